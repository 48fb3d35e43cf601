"""Campaigns: when a throttled campaign's next chunk may start, shared by every run of it (several
workers on one campaign keep to its messages per minute together)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.add_column(sa.Column('paced_until', trato.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('paced_until')
