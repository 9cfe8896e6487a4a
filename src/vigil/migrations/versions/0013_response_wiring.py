"""Response wiring: the policy paged per unit and severity, each page's delivery, a post-mortem's publication

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-29 06:11:18.503202
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incident_paging',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('channel_ids', sa.JSON(), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'],
                            name=op.f('fk_incident_paging_policy_id_escalation_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_incident_paging_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_paging')),
    sa.UniqueConstraint('unit_id', 'severity', name='uq_incident_paging_unit_severity')
    )
    with op.batch_alter_table('incident_paging', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_paging_unit_id'), ['unit_id'], unique=False)

    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivery_id', sa.Integer(), nullable=True))

    with op.batch_alter_table('incident_postmortems', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kb_slug', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('kb_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('git_commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('published_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('published_by', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('incident_postmortems', schema=None) as batch_op:
        batch_op.drop_column('published_by')
        batch_op.drop_column('published_at')
        batch_op.drop_column('git_commit')
        batch_op.drop_column('kb_version')
        batch_op.drop_column('kb_slug')

    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.drop_column('delivery_id')
        batch_op.drop_column('channel_id')

    with op.batch_alter_table('incident_paging', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_paging_unit_id'))

    op.drop_table('incident_paging')
