"""Delivery providers configured through the API (credentials sealed), their change stamp, and the
index the clean-up of old idempotency keys reads

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trato.core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('delivery_providers',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('adapter', sa.String(length=40), nullable=False),
    sa.Column('channels', JSON, nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('settings', JSON, nullable=False),
    sa.Column('max_per_second', sa.Float(), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_delivery_providers'))
    )
    op.create_table('delivery_provider_stamp',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stamp', sa.String(length=32), nullable=False),
    sa.Column('changed_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_provider_stamp'))
    )
    op.create_index('ix_delivery_idempotency_keys_created', 'delivery_idempotency_keys', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_delivery_idempotency_keys_created', table_name='delivery_idempotency_keys')
    op.drop_table('delivery_provider_stamp')
    op.drop_table('delivery_providers')
