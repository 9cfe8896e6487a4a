"""siem: log-source settings and saved searches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:36:55.016848
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('log_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=64), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('keep_original', sa.Boolean(), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=True),
    sa.Column('expected_interval_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_log_sources_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_sources')),
    sa.UniqueConstraint('name', name=op.f('uq_log_sources_name'))
    )
    with op.batch_alter_table('log_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_sources_unit_id'), ['unit_id'], unique=False)

    op.create_table('saved_searches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('time_range', sa.String(length=64), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_saved_searches_unit_id_org_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_saved_searches_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_searches')),
    sa.UniqueConstraint('user_id', 'name', name='uq_saved_searches_user_name')
    )
    with op.batch_alter_table('saved_searches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_searches_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_saved_searches_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('saved_searches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_searches_user_id'))
        batch_op.drop_index(batch_op.f('ix_saved_searches_unit_id'))

    op.drop_table('saved_searches')
    with op.batch_alter_table('log_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_sources_unit_id'))

    op.drop_table('log_sources')
