"""Campaign tracking: short links of campaigns' text messages (SMS, WhatsApp), ``/s/{code}``

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

UTC = trato.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('campaign_short_links',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('variant', sa.String(length=16), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=1), nullable=False),
    sa.Column('target', sa.String(length=2000), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_short_links_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_campaign_short_links'))
    )
    with op.batch_alter_table('campaign_short_links', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_short_links_campaign', ['campaign_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_short_links', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_short_links_campaign')
    op.drop_table('campaign_short_links')
