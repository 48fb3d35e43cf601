"""Communications inventory, template versions with review comments, content blocks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:21:20.770358
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trato.core.db
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('communications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.Text(), nullable=False),
    sa.Column('regulatory_notes', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('default_language', sa.String(length=8), nullable=False),
    sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sample_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('latest_version_id', sa.String(length=40), nullable=True),
    sa.Column('approved_version_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communications')),
    sa.UniqueConstraint('key', name=op.f('uq_communications_key'))
    )
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_communications_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_communications_purpose'), ['purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_communications_status'), ['status'], unique=False)

    op.create_table('content_blocks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('latest_version_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_blocks')),
    sa.UniqueConstraint('key', name=op.f('uq_content_blocks_key'))
    )
    op.create_table('communication_versions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('communication_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('blocks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('findings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('acknowledged_warnings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('submitted_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.String(length=120), nullable=True),
    sa.Column('decided_at', trato.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['communication_id'], ['communications.id'], name=op.f('fk_communication_versions_communication_id_communications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communication_versions')),
    sa.UniqueConstraint('communication_id', 'number', name=op.f('uq_communication_versions_communication_id_number'))
    )
    with op.batch_alter_table('communication_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_communication_versions_communication_id'), ['communication_id'], unique=False)

    op.create_table('content_block_versions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('block_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['block_id'], ['content_blocks.id'], name=op.f('fk_content_block_versions_block_id_content_blocks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_block_versions')),
    sa.UniqueConstraint('block_id', 'number', name=op.f('uq_content_block_versions_block_id_number'))
    )
    with op.batch_alter_table('content_block_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_block_versions_block_id'), ['block_id'], unique=False)

    op.create_table('communication_version_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('version_id', sa.String(length=40), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', trato.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['communication_versions.id'], name=op.f('fk_communication_version_comments_version_id_communication_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communication_version_comments'))
    )
    with op.batch_alter_table('communication_version_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_communication_version_comments_version_id'), ['version_id'], unique=False)

    op.create_table('content_block_uses',
    sa.Column('version_id', sa.String(length=40), nullable=False),
    sa.Column('block_key', sa.String(length=80), nullable=False),
    sa.Column('communication_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['communication_versions.id'], name=op.f('fk_content_block_uses_version_id_communication_versions')),
    sa.PrimaryKeyConstraint('version_id', 'block_key', name=op.f('pk_content_block_uses'))
    )
    with op.batch_alter_table('content_block_uses', schema=None) as batch_op:
        batch_op.create_index('ix_content_block_uses_block_key', ['block_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('content_block_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_content_block_uses_block_key')

    op.drop_table('content_block_uses')
    with op.batch_alter_table('communication_version_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communication_version_comments_version_id'))

    op.drop_table('communication_version_comments')
    with op.batch_alter_table('content_block_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_block_versions_block_id'))

    op.drop_table('content_block_versions')
    with op.batch_alter_table('communication_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communication_versions_communication_id'))

    op.drop_table('communication_versions')
    op.drop_table('content_blocks')
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communications_status'))
        batch_op.drop_index(batch_op.f('ix_communications_purpose'))
        batch_op.drop_index(batch_op.f('ix_communications_department'))

    op.drop_table('communications')
