"""Delivery feedback: find a message by the provider's id when its status callback arrives

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_delivery_messages_provider_id', 'delivery_messages', ['provider_message_id'])


def downgrade() -> None:
    op.drop_index('ix_delivery_messages_provider_id', table_name='delivery_messages')
