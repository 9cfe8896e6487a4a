"""knowledge base: pages and their versions

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-29 05:19:06.431574
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kb_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source_kind', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=100), nullable=False),
    sa.Column('search_title', sa.Text(), nullable=False),
    sa.Column('search_body', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('git_commit', sa.String(length=64), nullable=False),
    sa.Column('published_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_kb_pages_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_pages')),
    sa.UniqueConstraint('slug', name=op.f('uq_kb_pages_slug'))
    )
    with op.batch_alter_table('kb_pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_pages_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_pages_updated_at'), ['updated_at'], unique=False)

    op.create_table('kb_page_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=False),
    sa.Column('source_kind', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=100), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('git_commit', sa.String(length=64), nullable=False),
    sa.Column('git_path', sa.String(length=300), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['kb_pages.id'], name=op.f('fk_kb_page_versions_page_id_kb_pages'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_kb_page_versions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_page_versions')),
    sa.UniqueConstraint('page_id', 'number', name='uq_kb_page_versions_page_number')
    )
    with op.batch_alter_table('kb_page_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_page_versions_page_id'), ['page_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_page_versions_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('kb_page_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_page_versions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_kb_page_versions_page_id'))

    op.drop_table('kb_page_versions')
    with op.batch_alter_table('kb_pages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_pages_updated_at'))
        batch_op.drop_index(batch_op.f('ix_kb_pages_unit_id'))

    op.drop_table('kb_pages')
