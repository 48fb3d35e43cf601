"""Lifetime value per currency: a revenue table, and each event's currency

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:18:02.124852
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trato.core.settings import get_settings


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_revenue',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_revenue_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', 'currency', name=op.f('pk_customer_revenue'))
    )
    # Plain ALTER TABLE on both databases (SQLite 3.35+): batch mode would copy the customers
    # table, which other tables reference.
    op.execute("ALTER TABLE customers DROP COLUMN lifetime_value_cents")
    op.execute("ALTER TABLE events ADD COLUMN currency VARCHAR(3)")
    # Revenue already stored: its currency is in the event's properties when the sender gave one
    # (a valid three-letter code), else it is taken to be the default currency.
    bind = op.get_bind()
    given = (
        "upper(json_extract(properties, '$.currency'))" if bind.dialect.name == "sqlite"
        else "upper(properties->>'currency')"
    )
    op.execute(sa.text(
        f"UPDATE events SET currency = CASE WHEN length({given}) = 3 THEN {given} ELSE :c END "
        "WHERE revenue_cents IS NOT NULL"
    ).bindparams(c=get_settings().default_currency))
    op.execute(
        "INSERT INTO customer_revenue (customer_id, currency, cents) "
        "SELECT customer_id, currency, SUM(revenue_cents) FROM events WHERE revenue_cents IS NOT NULL "
        "GROUP BY customer_id, currency"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN currency")
    op.execute("ALTER TABLE customers ADD COLUMN lifetime_value_cents BIGINT NOT NULL DEFAULT 0")

    op.drop_table('customer_revenue')
