"""Push registrations: the devices and browsers apps register for a customer's notifications

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_push_registrations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('p256dh', sa.String(length=128), nullable=True),
    sa.Column('auth', sa.String(length=64), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_push_registrations')),
    sa.UniqueConstraint('platform', 'token_sha256', name=op.f('uq_delivery_push_registrations_platform_token_sha256')),
    )
    op.create_index(op.f('ix_delivery_push_registrations_customer_id'), 'delivery_push_registrations',
                    ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_delivery_push_registrations_customer_id'), table_name='delivery_push_registrations')
    op.drop_table('delivery_push_registrations')
