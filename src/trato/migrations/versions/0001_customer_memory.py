"""customer memory, sources, tokens

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 20:33:35.304028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db
from sqlalchemy.dialects import postgresql  # noqa: I001

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_api_tokens_token_digest'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_object_id'), ['object_id'], unique=False)

    op.create_table('customers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('traits', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('trait_times', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('first_name', sa.String(length=120), nullable=True),
    sa.Column('last_name', sa.String(length=120), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('customer_since', sa.Date(), nullable=True),
    sa.Column('search_name', sa.String(length=250), nullable=True),
    sa.Column('first_seen_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('last_purchase_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('purchase_count', sa.Integer(), nullable=False),
    sa.Column('lifetime_value_cents', sa.BigInteger(), nullable=False),
    sa.Column('last_channel', sa.String(length=32), nullable=True),
    sa.Column('merged_into_id', sa.String(length=40), nullable=True),
    sa.Column('merged_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['customers.id'], name=op.f('fk_customers_merged_into_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_merged_into_id'), ['merged_into_id'], unique=False)
        batch_op.create_index('ix_customers_search_name', ['search_name'], unique=False, postgresql_ops={'search_name': 'varchar_pattern_ops'})

    op.create_table('sources',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('write_key_digest', sa.String(length=64), nullable=False),
    sa.Column('write_key_prefix', sa.String(length=16), nullable=False),
    sa.Column('default_channel', sa.String(length=32), nullable=True),
    sa.Column('default_department', sa.String(length=64), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('name', name=op.f('uq_sources_name')),
    sa.UniqueConstraint('write_key_digest', name=op.f('uq_sources_write_key_digest'))
    )
    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('customer_merges',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('survivor_id', sa.String(length=40), nullable=False),
    sa.Column('merged_id', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('explanation', sa.String(length=500), nullable=False),
    sa.Column('trigger_identity', sa.String(length=600), nullable=True),
    sa.Column('source_id', sa.String(length=40), nullable=True),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.Column('moved', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('survivor_before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('merged_before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('undone_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['merged_id'], ['customers.id'], name=op.f('fk_customer_merges_merged_id_customers')),
    sa.ForeignKeyConstraint(['survivor_id'], ['customers.id'], name=op.f('fk_customer_merges_survivor_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_merges'))
    )
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merges_merged_id'), ['merged_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merges_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('event_rollups',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_event_rollups_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', 'name', 'day', name=op.f('pk_event_rollups'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('origin_customer_id', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('department', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_events_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('source_id', 'message_id', name=op.f('uq_events_source_id_message_id'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_time', ['customer_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_events_name_time', ['name', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_origin_customer_id'), ['origin_customer_id'], unique=False)

    op.create_table('identities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('origin_customer_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False),
    sa.Column('linked_via', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=True),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_identities_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_identities_kind_value'))
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identities_origin_customer_id'), ['origin_customer_id'], unique=False)
        batch_op.create_index('ix_identities_value', ['value'], unique=False, postgresql_ops={'value': 'varchar_pattern_ops'})



def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index('ix_identities_value', postgresql_ops={'value': 'varchar_pattern_ops'})
        batch_op.drop_index(batch_op.f('ix_identities_origin_customer_id'))
        batch_op.drop_index(batch_op.f('ix_identities_customer_id'))

    op.drop_table('identities')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_origin_customer_id'))
        batch_op.drop_index('ix_events_name_time')
        batch_op.drop_index('ix_events_customer_time')

    op.drop_table('events')
    op.drop_table('event_rollups')
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merges_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merges_merged_id'))

    op.drop_table('customer_merges')
    op.drop_table('users')
    op.drop_table('sources')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_search_name', postgresql_ops={'search_name': 'varchar_pattern_ops'})
        batch_op.drop_index(batch_op.f('ix_customers_merged_into_id'))

    op.drop_table('customers')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_object_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    op.drop_table('api_tokens')
