"""Contact policy: purposes, topics, consent and its history, suppressions, quiet hours, caps,
the contact ledger and the decision log; the default purposes, quiet hours and marketing cap

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:22:37.444834
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import trato.core.db
from sqlalchemy.dialects import postgresql  # noqa: I001

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('policy_caps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('communication', sa.String(length=120), nullable=True),
    sa.Column('max_count', sa.Integer(), nullable=False),
    sa.Column('window_seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_caps'))
    )
    op.create_table('policy_consent_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('proof', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_consent_history'))
    )
    with op.batch_alter_table('policy_consent_history', schema=None) as batch_op:
        batch_op.create_index('ix_policy_consent_history_customer_at', ['customer_id', 'at'], unique=False)

    op.create_table('policy_consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_consents')),
    sa.UniqueConstraint('customer_id', 'channel', 'purpose', 'topic', name=op.f('uq_policy_consents_customer_id_channel_purpose_topic'))
    )
    with op.batch_alter_table('policy_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_consents_customer_id'), ['customer_id'], unique=False)

    op.create_table('policy_contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('communication', sa.String(length=120), nullable=False),
    sa.Column('sent_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_contacts')),
    sa.UniqueConstraint('message_id', name=op.f('uq_policy_contacts_message_id'))
    )
    with op.batch_alter_table('policy_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_policy_contacts_customer_at', ['customer_id', 'sent_at'], unique=False)

    op.create_table('policy_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('communication', sa.String(length=120), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('decided_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_decisions'))
    )
    with op.batch_alter_table('policy_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_policy_decisions_customer_at', ['customer_id', 'decided_at'], unique=False)

    op.create_table('policy_preferences',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('preferred_channel', sa.String(length=16), nullable=True),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_policy_preferences'))
    )
    op.create_table('policy_purposes',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('name_en', sa.String(length=120), nullable=False),
    sa.Column('name_es', sa.String(length=120), nullable=False),
    sa.Column('legal_basis', sa.String(length=32), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_policy_purposes'))
    )
    op.create_table('policy_suppressions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=True),
    sa.Column('value_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('purpose', sa.String(length=40), nullable=True),
    sa.Column('expires_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_suppressions'))
    )
    with op.batch_alter_table('policy_suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_suppressions_value_hash'), ['value_hash'], unique=False)

    op.create_table('policy_quiet_hours',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False),
    sa.Column('exempt', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['purpose'], ['policy_purposes.key'], name=op.f('fk_policy_quiet_hours_purpose_policy_purposes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_quiet_hours')),
    sa.UniqueConstraint('purpose', 'channel', name=op.f('uq_policy_quiet_hours_purpose_channel'))
    )
    op.create_table('policy_topics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('name_en', sa.String(length=120), nullable=False),
    sa.Column('name_es', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['purpose'], ['policy_purposes.key'], name=op.f('fk_policy_topics_purpose_policy_purposes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_topics')),
    sa.UniqueConstraint('purpose', 'key', name=op.f('uq_policy_topics_purpose_key'))
    )
    # The defaults, written out here so that later changes to the code do not change history.
    purposes = sa.table('policy_purposes', sa.column('key'), sa.column('name_en'), sa.column('name_es'),
                        sa.column('legal_basis'), sa.column('created_at', trato.core.db.UTCDateTime()))
    topics = sa.table('policy_topics', sa.column('purpose'), sa.column('key'), sa.column('name_en'),
                      sa.column('name_es'))
    quiet = sa.table('policy_quiet_hours', sa.column('purpose'), sa.column('channel'), sa.column('start_minute'),
                     sa.column('end_minute'), sa.column('exempt', sa.Boolean()))
    caps = sa.table('policy_caps', sa.column('id'), sa.column('purpose'), sa.column('max_count'),
                    sa.column('window_seconds'), sa.column('created_at', trato.core.db.UTCDateTime()))
    now = datetime.now(UTC)
    op.bulk_insert(purposes, [
        {"key": k, "name_en": en, "name_es": es, "legal_basis": basis, "created_at": now}
        for k, en, es, basis in (
            ("service", "Service", "Servicio", "contract"),
            ("transactional", "Transactional", "Transaccional", "contract"),
            ("advice", "Advice", "Asesoramiento", "legitimate_interest"),
            ("marketing", "Marketing", "Publicidad", "consent"),
            ("payment", "Payment", "Cobros", "legal_obligation"),
            ("research", "Research", "Encuestas", "consent"),
        )
    ])
    op.bulk_insert(topics, [
        {"purpose": p, "key": k, "name_en": en, "name_es": es} for p, k, en, es in (
            ("marketing", "newsletter", "Newsletter", "Boletín"), ("marketing", "offers", "Offers", "Ofertas"),
            ("service", "outages", "Outages", "Incidencias"),
            ("research", "surveys", "Surveys", "Encuestas de satisfacción"),
        )
    ])
    op.bulk_insert(quiet, [
        {"purpose": p, "channel": "*", "start_minute": start, "end_minute": end, "exempt": False}
        for p, start, end in (("marketing", 480, 1260), ("advice", 480, 1260), ("research", 540, 1260),
                              ("payment", 540, 1260))
    ])
    op.bulk_insert(caps, [{"id": "cap_default_marketing", "purpose": "marketing", "max_count": 3,
                           "window_seconds": 7 * 86400, "created_at": now}])


def downgrade() -> None:
    op.drop_table('policy_topics')
    op.drop_table('policy_quiet_hours')
    with op.batch_alter_table('policy_suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_suppressions_value_hash'))

    op.drop_table('policy_suppressions')
    op.drop_table('policy_purposes')
    op.drop_table('policy_preferences')
    with op.batch_alter_table('policy_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_decisions_customer_at')

    op.drop_table('policy_decisions')
    with op.batch_alter_table('policy_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_contacts_customer_at')

    op.drop_table('policy_contacts')
    with op.batch_alter_table('policy_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_consents_customer_id'))

    op.drop_table('policy_consents')
    with op.batch_alter_table('policy_consent_history', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_consent_history_customer_at')

    op.drop_table('policy_consent_history')
    op.drop_table('policy_caps')
