"""Archive: hash-chained proof of every message sent, its delivery states, the chain head

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('archive_chain_head',
    sa.Column('id', BIGINT_PK, autoincrement=False, nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_chain_head'))
    )
    op.create_table('archived_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('communication_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('recipient_salt', sa.String(length=32), nullable=True),
    sa.Column('recipient_sha256', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.String(length=120), nullable=True),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.Column('storage', sa.String(length=16), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('context_sha256', sa.String(length=64), nullable=True),
    sa.Column('decision', sa.Text(), nullable=True),
    sa.Column('decision_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('erased_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archived_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_archived_messages_message_id')),
    sa.UniqueConstraint('sequence', name=op.f('uq_archived_messages_sequence'))
    )
    op.create_index('ix_archived_messages_communication', 'archived_messages', ['communication_id', 'sequence'], unique=False)
    op.create_index('ix_archived_messages_created', 'archived_messages', ['created_at'], unique=False)
    op.create_index('ix_archived_messages_customer', 'archived_messages', ['customer_id', 'sequence'], unique=False)
    op.create_table('archive_statuses',
    sa.Column('id', BIGINT_PK, autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provider_id', sa.String(length=200), nullable=True),
    sa.Column('details', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('recorded_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['archived_messages.id'], name=op.f('fk_archive_statuses_entry_id_archived_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_statuses')),
    sa.UniqueConstraint('entry_id', 'status', 'at', name=op.f('uq_archive_statuses_entry_id_status_at'))
    )
    op.create_index(op.f('ix_archive_statuses_entry_id'), 'archive_statuses', ['entry_id'], unique=False)
    # The chain starts empty: sequence 0, the all-zero hash every first entry links to.
    op.execute(sa.text("INSERT INTO archive_chain_head (id, sequence, entry_hash) VALUES (1, 0, :genesis)")
               .bindparams(genesis="0" * 64))


def downgrade() -> None:
    op.drop_index(op.f('ix_archive_statuses_entry_id'), table_name='archive_statuses')
    op.drop_table('archive_statuses')
    op.drop_index('ix_archived_messages_customer', table_name='archived_messages')
    op.drop_index('ix_archived_messages_created', table_name='archived_messages')
    op.drop_index('ix_archived_messages_communication', table_name='archived_messages')
    op.drop_table('archived_messages')
    op.drop_table('archive_chain_head')
