"""Archive statuses: drop the index on ``entry_id`` alone

The unique constraint on (``entry_id``, ``status``, ``at``) starts with ``entry_id`` and serves
every lookup by entry; the second index only cost a write for every status recorded (one a
message sent, and a campaign sends millions).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f('ix_archive_statuses_entry_id'), table_name='archive_statuses')


def downgrade() -> None:
    op.create_index(op.f('ix_archive_statuses_entry_id'), 'archive_statuses', ['entry_id'], unique=False)
