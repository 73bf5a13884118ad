"""express: at most one open forward per inquiry and level, one open side request of a kind per
hop, one result per inquiry (partial unique indexes, issue 24)

Revision ID: express_0002
Revises: express_0001
Create Date: 2026-12-08

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'express_0002'
down_revision = 'express_0001'
branch_labels = None
depends_on = None

OPEN_FORWARD = "kind = 'forward' AND replied_at IS NULL"
OPEN_SIDE_REQUEST = "kind <> 'forward' AND replied_at IS NULL"
RESULT_UPDATE = "kind = 'result'"


def _partial_unique(name, table, columns, where):
    op.create_index(name, table, columns, unique=True, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade():
    _partial_unique('ux_express_hops_open_forward', 'express_hops', ['inquiry_id', 'stage'], OPEN_FORWARD)
    _partial_unique('ux_express_hops_open_side_request', 'express_hops', ['parent_id', 'kind'],
                    OPEN_SIDE_REQUEST)
    _partial_unique('ux_express_customer_updates_result', 'express_customer_updates', ['inquiry_id'],
                    RESULT_UPDATE)


def downgrade():
    op.drop_index('ux_express_customer_updates_result', table_name='express_customer_updates')
    op.drop_index('ux_express_hops_open_side_request', table_name='express_hops')
    op.drop_index('ux_express_hops_open_forward', table_name='express_hops')
