"""incident evidence and reports

Revision ID: 0011
Revises: 0010
Evidence files with their chain of custody, and passive incident reports.

Create Date: 2026-11-29 06:11:14.492521
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incident_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_evidence_incident_id_incidents'),
        ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_evidence')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_incident_evidence_stored_name'))
    )
    with op.batch_alter_table('incident_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_evidence_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_evidence_sha256'), ['sha256'], unique=False)

    op.create_table('incident_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('observed_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reporter', sa.String(length=64), nullable=False),
    sa.Column('follow_digest', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('triaged_by', sa.String(length=64), nullable=True),
    sa.Column('triaged_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_reports_incident_id_incidents'),
        ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'],
        name=op.f('fk_incident_reports_reporter_id_users'),
        ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_incident_reports_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_reports')),
    sa.UniqueConstraint('follow_digest', name=op.f('uq_incident_reports_follow_digest'))
    )
    with op.batch_alter_table('incident_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_reports_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_reports_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_reports_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_reports_unit_id'), ['unit_id'], unique=False)

    op.create_table('incident_evidence_custody',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('source_ip', sa.String(length=64), nullable=False),
    sa.Column('at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('to_holder', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'],
        name=op.f('fk_incident_evidence_custody_actor_id_users'),
        ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['evidence_id'], ['incident_evidence.id'],
        name=op.f('fk_incident_evidence_custody_evidence_id_incident_evidence'),
        ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_evidence_custody'))
    )
    with op.batch_alter_table('incident_evidence_custody', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_evidence_custody_evidence_id'), ['evidence_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_evidence_custody', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_evidence_custody_evidence_id'))

    op.drop_table('incident_evidence_custody')
    with op.batch_alter_table('incident_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_reports_unit_id'))
        batch_op.drop_index(batch_op.f('ix_incident_reports_status'))
        batch_op.drop_index(batch_op.f('ix_incident_reports_reporter_id'))
        batch_op.drop_index(batch_op.f('ix_incident_reports_created_at'))

    op.drop_table('incident_reports')
    with op.batch_alter_table('incident_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_evidence_sha256'))
        batch_op.drop_index(batch_op.f('ix_incident_evidence_incident_id'))

    op.drop_table('incident_evidence')
