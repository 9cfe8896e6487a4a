"""detection rules, alerts, suppressions and hunts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:43:32.235265
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rule_packs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('rule_count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('imported_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_packs')),
    sa.UniqueConstraint('name', name=op.f('uq_rule_packs_name'))
    )
    op.create_table('alert_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_uid', sa.String(length=64), nullable=True),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('expires_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('last_hit_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_alert_suppressions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_suppressions'))
    )
    with op.batch_alter_table('alert_suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_suppressions_rule_uid'), ['rule_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_suppressions_unit_id'), ['unit_id'], unique=False)

    op.create_table('detection_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.Integer(), nullable=False),
    sa.Column('rule_uid', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('product', sa.String(length=100), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('service', sa.String(length=100), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('references', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('falsepositives', sa.JSON(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('yaml', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('level_override', sa.String(length=20), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('false_positives', sa.Integer(), nullable=False),
    sa.Column('last_hit_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['pack_id'], ['rule_packs.id'], name=op.f('fk_detection_rules_pack_id_rule_packs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detection_rules')),
    sa.UniqueConstraint('pack_id', 'rule_uid', name='uq_detection_rules_pack_rule')
    )
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_detection_rules_pack_id'), ['pack_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_detection_rules_rule_uid'), ['rule_uid'], unique=False)

    op.create_table('hunts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('rule_uids', sa.JSON(), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('window_start', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('events_scanned', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_hunts_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hunts'))
    )
    with op.batch_alter_table('hunts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hunts_unit_id'), ['unit_id'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('rule_uid', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('resolution', sa.String(length=20), nullable=True),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.Column('group_key', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('user_name', sa.String(length=255), nullable=True),
    sa.Column('source_ip', sa.String(length=64), nullable=True),
    sa.Column('event_source', sa.String(length=200), nullable=False),
    sa.Column('techniques', sa.JSON(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_alerts_assignee_id_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['detection_rules.id'], name=op.f('fk_alerts_rule_id_detection_rules'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_alerts_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_dedup_key'), ['dedup_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_first_seen'), ['first_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_host'), ['host'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_last_seen'), ['last_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule_uid'), ['rule_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_unit_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_alerts_rule_uid'))
        batch_op.drop_index(batch_op.f('ix_alerts_rule_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_level'))
        batch_op.drop_index(batch_op.f('ix_alerts_last_seen'))
        batch_op.drop_index(batch_op.f('ix_alerts_host'))
        batch_op.drop_index(batch_op.f('ix_alerts_first_seen'))
        batch_op.drop_index(batch_op.f('ix_alerts_dedup_key'))

    op.drop_table('alerts')
    with op.batch_alter_table('hunts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hunts_unit_id'))

    op.drop_table('hunts')
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_detection_rules_rule_uid'))
        batch_op.drop_index(batch_op.f('ix_detection_rules_pack_id'))

    op.drop_table('detection_rules')
    with op.batch_alter_table('alert_suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_suppressions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_alert_suppressions_rule_uid'))

    op.drop_table('alert_suppressions')
    op.drop_table('rule_packs')
