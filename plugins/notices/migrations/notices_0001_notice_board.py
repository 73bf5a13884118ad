"""notices: notice board tables

Revision ID: notices_0001
Revises:
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa

import portal.db_types


# revision identifiers, used by Alembic.
revision = 'notices_0001'
down_revision = None
branch_labels = ('notices',)
depends_on = 'core_0001'


def upgrade():
    op.create_table('notices_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('visible_until', sa.Date(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('published_at', portal.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', portal.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_notices_notice_author_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_notices_notice_unit_id_units')),
    sa.ForeignKeyConstraint(['withdrawn_by_id'], ['users.id'], name=op.f('fk_notices_notice_withdrawn_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices_notice'))
    )
    with op.batch_alter_table('notices_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_notice_published_at'), ['published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_notice_unit_id'), ['unit_id'], unique=False)

    op.create_table('notices_read',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('read_at', portal.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices_notice.id'], name=op.f('fk_notices_read_notice_id_notices_notice')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notices_read_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices_read')),
    sa.UniqueConstraint('notice_id', 'user_id', name=op.f('uq_notices_read_notice_id_user_id'))
    )
    with op.batch_alter_table('notices_read', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_read_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_read_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('notices_read', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_read_user_id'))
        batch_op.drop_index(batch_op.f('ix_notices_read_notice_id'))

    op.drop_table('notices_read')
    with op.batch_alter_table('notices_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_notice_unit_id'))
        batch_op.drop_index(batch_op.f('ix_notices_notice_published_at'))

    op.drop_table('notices_notice')
