"""Indexes a campaign chunk's queries can count on at a million customers: recipients in the order
chunks take them (campaign, state, id) — a range instead of a sort of every pending recipient —
and only merged profiles in the merged-into index (a full one, nearly all NULL, makes SQLite's
planner scan every customer once statistics are gathered)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_campaign_recipients_state', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_queue', 'campaign_recipients', ['campaign_id', 'state', 'id'])
    op.drop_index('ix_customers_merged_into_id', table_name='customers')
    op.create_index('ix_customers_merged_into_id', 'customers', ['merged_into_id'],
                    sqlite_where=sa.text('merged_into_id IS NOT NULL'),
                    postgresql_where=sa.text('merged_into_id IS NOT NULL'))
    op.drop_index('ix_campaign_recipients_message', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_message', 'campaign_recipients', ['message_id'],
                    sqlite_where=sa.text('message_id IS NOT NULL'), postgresql_where=sa.text('message_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_campaign_recipients_message', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_message', 'campaign_recipients', ['message_id'])
    op.drop_index('ix_customers_merged_into_id', table_name='customers')
    op.create_index('ix_customers_merged_into_id', 'customers', ['merged_into_id'])
    op.drop_index('ix_campaign_recipients_queue', table_name='campaign_recipients')
    op.create_index('ix_campaign_recipients_state', 'campaign_recipients', ['campaign_id', 'state', 'customer_id'])
