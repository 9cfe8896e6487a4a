"""Response actions and playbooks: action configurations, executions, playbooks, versions, runs, step results

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-29 06:11:25.276607
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('playbooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_playbooks_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbooks')),
    sa.UniqueConstraint('name', name=op.f('uq_playbooks_name'))
    )
    with op.batch_alter_table('playbooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_playbooks_unit_id'), ['unit_id'], unique=False)

    op.create_table('response_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('requires_approval', sa.Boolean(), nullable=False),
    sa.Column('rollback_after_seconds', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_response_actions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_actions')),
    sa.UniqueConstraint('name', name=op.f('uq_response_actions_name'))
    )
    with op.batch_alter_table('response_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_response_actions_unit_id'), ['unit_id'], unique=False)

    op.create_table('playbook_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('playbook_id', sa.Integer(), nullable=True),
    sa.Column('playbook_name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('trigger', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('current_step', sa.Integer(), nullable=False),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['playbook_id'], ['playbooks.id'], name=op.f('fk_playbook_runs_playbook_id_playbooks'),
        ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_playbook_runs_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_runs'))
    )
    with op.batch_alter_table('playbook_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_playbook_runs_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_playbook_runs_playbook_id'), ['playbook_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_playbook_runs_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_playbook_runs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_playbook_runs_unit_id'), ['unit_id'], unique=False)

    op.create_table('playbook_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('playbook_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['playbook_id'], ['playbooks.id'],
        name=op.f('fk_playbook_versions_playbook_id_playbooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_versions')),
    sa.UniqueConstraint('playbook_id', 'version', name=op.f('uq_playbook_versions_playbook_id'))
    )
    with op.batch_alter_table('playbook_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_playbook_versions_playbook_id'), ['playbook_id'], unique=False)

    op.create_table('response_action_executions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=True),
    sa.Column('action_name', sa.String(length=200), nullable=False),
    sa.Column('action_kind', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('playbook_run_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_comment', sa.Text(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('requested_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rollback_due_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rolled_back_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['response_actions.id'],
        name=op.f('fk_response_action_executions_action_id_response_actions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'],
        name=op.f('fk_response_action_executions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_action_executions'))
    )
    with op.batch_alter_table('response_action_executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_response_action_executions_action_id'), ['action_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_playbook_run_id'), ['playbook_run_id'],
            unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_requested_at'), ['requested_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_rollback_due_at'), ['rollback_due_at'],
            unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_response_action_executions_unit_id'), ['unit_id'], unique=False)

    op.create_table('playbook_step_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('execution_ids', sa.JSON(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['playbook_runs.id'],
        name=op.f('fk_playbook_step_results_run_id_playbook_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_step_results'))
    )
    with op.batch_alter_table('playbook_step_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_playbook_step_results_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('playbook_step_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_playbook_step_results_run_id'))

    op.drop_table('playbook_step_results')
    with op.batch_alter_table('response_action_executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_response_action_executions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_status'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_rollback_due_at'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_requested_at'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_playbook_run_id'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_incident_id'))
        batch_op.drop_index(batch_op.f('ix_response_action_executions_action_id'))

    op.drop_table('response_action_executions')
    with op.batch_alter_table('playbook_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_playbook_versions_playbook_id'))

    op.drop_table('playbook_versions')
    with op.batch_alter_table('playbook_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_playbook_runs_unit_id'))
        batch_op.drop_index(batch_op.f('ix_playbook_runs_status'))
        batch_op.drop_index(batch_op.f('ix_playbook_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_playbook_runs_playbook_id'))
        batch_op.drop_index(batch_op.f('ix_playbook_runs_incident_id'))

    op.drop_table('playbook_runs')
    with op.batch_alter_table('response_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_response_actions_unit_id'))

    op.drop_table('response_actions')
    with op.batch_alter_table('playbooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_playbooks_unit_id'))

    op.drop_table('playbooks')
