"""login throttling by name and address: cleared failures, indexes; no more account lock

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-26 09:00:00

``login_attempts.cleared_at`` marks a failure that no longer counts (a later login of the same
name from the same address, or an admin cleared it); indexes on (username, at) and
(remote_addr, at) serve the per-name and per-address counts (the first replaces the index on
username alone).

``users.locked_until`` is dropped: nothing locks an account any more (portal/auth/throttle.py).
Locks in force at the upgrade end with it.  The column goes with a plain ``ALTER TABLE … DROP
COLUMN`` (PostgreSQL; SQLite 3.35 and later), never SQLite's batch mode, whose copy-and-rename
of ``users`` would cascade to every row that references a user while foreign keys are on.  On
an older SQLite the column stays: unmapped and unread.
"""
from alembic import op
import sqlalchemy as sa

import portal.db_types


# revision identifiers, used by Alembic.
revision = 'core_0003'
down_revision = 'core_0002'
branch_labels = None
depends_on = None


def _can_drop_columns() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return True
    version = bind.exec_driver_sql("SELECT sqlite_version()").scalar()
    return tuple(int(part) for part in version.split(".")[:2]) >= (3, 35)


def _has_column(table: str, column: str) -> bool:
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade():
    if not _has_column('login_attempts', 'cleared_at'):  # an old SQLite's downgrade leaves it
        op.add_column('login_attempts', sa.Column('cleared_at', portal.db_types.UTCDateTime(timezone=True),
                                                  nullable=True))
    op.create_index('ix_login_attempts_username_at', 'login_attempts', ['username', 'at'],
                    unique=False)
    op.create_index('ix_login_attempts_remote_addr_at', 'login_attempts', ['remote_addr', 'at'],
                    unique=False)
    op.drop_index('ix_login_attempts_username', table_name='login_attempts')
    if _can_drop_columns():
        op.drop_column('users', 'locked_until')


def downgrade():
    if not _has_column('users', 'locked_until'):
        op.add_column('users', sa.Column('locked_until', portal.db_types.UTCDateTime(timezone=True),
                                         nullable=True))
    op.create_index('ix_login_attempts_username', 'login_attempts', ['username'], unique=False)
    op.drop_index('ix_login_attempts_remote_addr_at', table_name='login_attempts')
    op.drop_index('ix_login_attempts_username_at', table_name='login_attempts')
    if _can_drop_columns():
        op.drop_column('login_attempts', 'cleared_at')
