"""sealed records covered by the audit chain; final notices frozen; purge functions and floors

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-08 02:30:00

* ``audit_retention_floors``: the fewest years each record type is kept whatever the settings
  say; the PostgreSQL purge functions refuse rows younger than that.
* ``penalty_notices``: ``deduction_mode`` joins the sealed columns, and once ``final_at`` is set
  the status and the money (``final_amount``, ``payroll_month``, ``payroll_amount``) freeze.
* PostgreSQL: the SECURITY DEFINER functions ``portal_purge_sealed`` and ``portal_purge_audit``
  through which an application role without the owner's rights purges (``portal db-grant``).
* Every sealed row already in the database gets its seal entry in the audit chain (chained
  with the current PORTAL_AUDIT_KEY), so ``audit-verify`` covers it from now on.
"""
from alembic import op
import sqlalchemy as sa
from flask import current_app

from portal.audit.sealed import create_seal_triggers, drop_seal_triggers
from portal.audit.triggers import create_purge_functions

# revision identifiers, used by Alembic.
revision = 'core_0004'
down_revision = 'core_0003'
branch_labels = None
depends_on = None

NOTICE_SEALED = ("unit_id", "user_id", "rule_id", "amount", "evidence", "occurred_at", "source",
                 "proposed_by_id", "published_by_id", "published_at", "appeal_deadline")
NOTICE_FINAL = ("final_at", ("status", "final_amount", "payroll_month", "payroll_amount"))


def upgrade():
    op.create_table('audit_retention_floors',
    sa.Column('table_name', sa.String(length=100), nullable=False),
    sa.Column('date_column', sa.String(length=100), nullable=False),
    sa.Column('years', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_audit_retention_floors'))
    )
    drop_seal_triggers(op, "penalty_notices")
    create_seal_triggers(op, "penalty_notices", (*NOTICE_SEALED, "deduction_mode"), NOTICE_FINAL)
    create_purge_functions(op)

    from portal.audit.seals import backfill, sealed_tables
    from portal.extensions import db

    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    tables = [t for t in sealed_tables([db.metadata]) if t.name in present]
    backfill(bind, current_app.config["PORTAL_AUDIT_KEY"], tables)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS portal_purge_sealed(text, bigint[])")
        op.execute("DROP FUNCTION IF EXISTS portal_purge_audit(bigint, text, timestamptz, text, text)")
    drop_seal_triggers(op, "penalty_notices")
    create_seal_triggers(op, "penalty_notices", NOTICE_SEALED)
    op.drop_table('audit_retention_floors')
