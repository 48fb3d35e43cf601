"""Contact policy: a configuration stamp, changed with every change to purposes, topics, quiet
hours or caps, so that each process can cache the configuration and know when it is stale

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:40:00
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import trato.core.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'policy_config_stamp',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stamp', sa.String(length=40), nullable=False),
        sa.Column('changed_at', trato.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_config_stamp')),
    )
    op.bulk_insert(table, [{'id': 1, 'stamp': uuid.uuid4().hex, 'changed_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('policy_config_stamp')
