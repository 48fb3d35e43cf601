"""Campaign recipients indexed in the order chunks take them (campaign, state, id): the next chunk
is a range of the index instead of a sort of every pending recipient

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 21:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_campaign_recipients_state', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_queue', 'campaign_recipients', ['campaign_id', 'state', 'id'])


def downgrade() -> None:
    op.drop_index('ix_campaign_recipients_queue', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_state', 'campaign_recipients', ['campaign_id', 'state', 'customer_id'])
