"""Segments: definitions, static lists, membership snapshots; indexes for behavioural counts

Revision ID: 0009a_audiences
Revises: 0009
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db
from sqlalchemy.dialects import postgresql

revision = '0009a_audiences'
down_revision = '0009'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('segments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('definition', JSON, nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('segment_list_members',
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_list_members_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_list_members'))
    )
    op.create_table('segment_snapshots',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('definition', JSON, nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_snapshots_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_snapshots'))
    )
    with op.batch_alter_table('segment_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_snapshots_segment_id'), ['segment_id'], unique=False)
    op.create_table('segment_snapshot_members',
    sa.Column('snapshot_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['segment_snapshots.id'], name=op.f('fk_segment_snapshot_members_snapshot_id_segment_snapshots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('snapshot_id', 'customer_id', name=op.f('pk_segment_snapshot_members'))
    )
    with op.batch_alter_table('segment_snapshot_members', schema=None) as batch_op:
        batch_op.create_index('ix_segment_snapshot_members_segment', ['segment_id'], unique=False)
    with op.batch_alter_table('event_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_event_rollups_name_day', ['name', 'day', 'customer_id', 'count'], unique=False)
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index('ix_identities_kind_customer', ['kind', 'customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index('ix_identities_kind_customer')
    with op.batch_alter_table('event_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_event_rollups_name_day')
    with op.batch_alter_table('segment_snapshot_members', schema=None) as batch_op:
        batch_op.drop_index('ix_segment_snapshot_members_segment')
    op.drop_table('segment_snapshot_members')
    with op.batch_alter_table('segment_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_snapshots_segment_id'))
    op.drop_table('segment_snapshots')
    op.drop_table('segment_list_members')
    op.drop_table('segments')
