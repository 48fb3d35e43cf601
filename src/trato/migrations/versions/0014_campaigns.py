"""Campaigns: campaigns, their recipients (one row per customer, the pipeline's truth) and what
recipients did afterwards (opens, clicks, unsubscribes, conversions)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trato.core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC = trato.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.Column('snapshot_id', sa.String(length=40), nullable=True),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('channels', JSON, nullable=False),
    sa.Column('variants', JSON, nullable=False),
    sa.Column('holdout_percent', sa.Integer(), nullable=False),
    sa.Column('data', JSON, nullable=False),
    sa.Column('schedule', sa.String(length=16), nullable=False),
    sa.Column('send_at', UTC, nullable=True),
    sa.Column('local_time', sa.String(length=5), nullable=True),
    sa.Column('throttle_per_minute', sa.Integer(), nullable=True),
    sa.Column('chunk_size', sa.Integer(), nullable=False),
    sa.Column('utm', JSON, nullable=False),
    sa.Column('conversion_event', sa.String(length=200), nullable=True),
    sa.Column('conversion_days', sa.Integer(), nullable=False),
    sa.Column('seeds', JSON, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('approved_by', sa.String(length=120), nullable=True),
    sa.Column('approved_at', UTC, nullable=True),
    sa.Column('recipients_total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('started_at', UTC, nullable=True),
    sa.Column('finished_at', UTC, nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('campaign_recipients',
    sa.Column('id', BIGINT_PK, autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('variant', sa.String(length=16), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('not_before', UTC, nullable=True),
    sa.Column('processed_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_recipients_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_recipients')),
    sa.UniqueConstraint('campaign_id', 'customer_id', name=op.f('uq_campaign_recipients_campaign_id_customer_id'))
    )
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_recipients_state', ['campaign_id', 'state', 'customer_id'], unique=False)
        batch_op.create_index('ix_campaign_recipients_message', ['message_id'], unique=False)
    op.create_table('campaign_events',
    sa.Column('id', BIGINT_PK, autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('variant', sa.String(length=16), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_events_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_events')),
    sa.UniqueConstraint('campaign_id', 'customer_id', 'kind', name=op.f('uq_campaign_events_campaign_id_customer_id_kind'))
    )


def downgrade() -> None:
    op.drop_table('campaign_events')
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_recipients_message')
        batch_op.drop_index('ix_campaign_recipients_state')
    op.drop_table('campaign_recipients')
    op.drop_table('campaigns')
