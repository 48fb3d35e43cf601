"""Printed letters: print-house batches and the letters in them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trato.core.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('delivery_letter_batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('open_slot', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('page_count', sa.Integer(), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dropped_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('drop_attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('location', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_letter_batches')),
    sa.UniqueConstraint('open_slot', name=op.f('uq_delivery_letter_batches_open_slot'))
    )
    with op.batch_alter_table('delivery_letter_batches', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_letter_batches_state', ['state', 'created_at'], unique=False)

    op.create_table('delivery_letter_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('address', JSON, nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sides', sa.String(length=8), nullable=False),
    sa.Column('postage', sa.String(length=40), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('status_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['delivery_letter_batches.id'],
                            name=op.f('fk_delivery_letter_items_batch_id_delivery_letter_batches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_letter_items')),
    sa.UniqueConstraint('batch_id', 'number', name=op.f('uq_delivery_letter_items_batch_id_number')),
    sa.UniqueConstraint('message_id', name=op.f('uq_delivery_letter_items_message_id'))
    )


def downgrade() -> None:
    op.drop_table('delivery_letter_items')
    with op.batch_alter_table('delivery_letter_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_letter_batches_state')
    op.drop_table('delivery_letter_batches')
