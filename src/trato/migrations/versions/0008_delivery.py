"""Delivery: messages, their state history, idempotency keys of the send API

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 00:56:54
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_idempotency_keys',
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('locked_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('principal', 'key', name=op.f('pk_delivery_idempotency_keys'))
    )
    op.create_table('delivery_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('communication_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('requested_channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('decision', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('reservation_id', sa.BigInteger(), nullable=True),
    sa.Column('archive_entry_id', sa.String(length=40), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('not_before', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_messages'))
    )
    with op.batch_alter_table('delivery_messages', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_messages_customer', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_delivery_messages_state', ['state', 'updated_at'], unique=False)

    op.create_table('delivery_message_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['delivery_messages.id'], name=op.f('fk_delivery_message_events_message_id_delivery_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_message_events'))
    )
    with op.batch_alter_table('delivery_message_events', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_message_events_message', ['message_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery_message_events', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_message_events_message')

    op.drop_table('delivery_message_events')
    with op.batch_alter_table('delivery_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_messages_state')
        batch_op.drop_index('ix_delivery_messages_customer')

    op.drop_table('delivery_messages')
    op.drop_table('delivery_idempotency_keys')
