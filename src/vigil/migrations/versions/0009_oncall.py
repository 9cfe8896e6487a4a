"""On-call schedules and overrides, escalation policies, escalations and their steps

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-29 05:19:10.081171
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('escalation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('levels', sa.JSON(), nullable=False),
    sa.Column('repeat', sa.Integer(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_escalation_policies_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_policies')),
    sa.UniqueConstraint('unit_id', 'name', name='uq_escalation_policies_unit_name')
    )
    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_policies_unit_id'), ['unit_id'], unique=False)

    op.create_table('oncall_schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('layers', sa.JSON(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_oncall_schedules_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oncall_schedules')),
    sa.UniqueConstraint('unit_id', 'name', name='uq_oncall_schedules_unit_name')
    )
    with op.batch_alter_table('oncall_schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oncall_schedules_unit_id'), ['unit_id'], unique=False)

    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('policy_name', sa.String(length=200), nullable=False),
    sa.Column('levels', sa.JSON(), nullable=False),
    sa.Column('repeat', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('next_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('acknowledged_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=False),
    sa.Column('acknowledged_via', sa.String(length=10), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['escalation_policies.id'],
                            name=op.f('fk_escalations_policy_id_escalation_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_escalations_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations'))
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalations_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalations_next_at'), ['next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalations_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalations_unit_id'), ['unit_id'], unique=False)

    op.create_table('oncall_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['oncall_schedules.id'],
                            name=op.f('fk_oncall_overrides_schedule_id_oncall_schedules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_oncall_overrides_unit_id_org_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_oncall_overrides_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oncall_overrides'))
    )
    with op.batch_alter_table('oncall_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oncall_overrides_schedule_id'), ['schedule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oncall_overrides_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oncall_overrides_user_id'), ['user_id'], unique=False)

    op.create_table('escalation_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('level', sa.Integer(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'],
                            name=op.f('fk_escalation_steps_escalation_id_escalations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_escalation_steps_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_steps'))
    )
    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_steps_escalation_id'), ['escalation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_steps_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_steps_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_steps_unit_id'))
        batch_op.drop_index(batch_op.f('ix_escalation_steps_incident_id'))
        batch_op.drop_index(batch_op.f('ix_escalation_steps_escalation_id'))

    op.drop_table('escalation_steps')
    with op.batch_alter_table('oncall_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oncall_overrides_user_id'))
        batch_op.drop_index(batch_op.f('ix_oncall_overrides_unit_id'))
        batch_op.drop_index(batch_op.f('ix_oncall_overrides_schedule_id'))

    op.drop_table('oncall_overrides')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalations_unit_id'))
        batch_op.drop_index(batch_op.f('ix_escalations_status'))
        batch_op.drop_index(batch_op.f('ix_escalations_next_at'))
        batch_op.drop_index(batch_op.f('ix_escalations_incident_id'))

    op.drop_table('escalations')
    with op.batch_alter_table('oncall_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oncall_schedules_unit_id'))

    op.drop_table('oncall_schedules')
    with op.batch_alter_table('escalation_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_policies_unit_id'))

    op.drop_table('escalation_policies')
