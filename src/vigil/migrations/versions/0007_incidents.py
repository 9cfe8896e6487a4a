"""incidents

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 05:18:48.200206

The incident domain: incidents and their alerts, observables, tasks, timeline, comments, phase spans,
status changes, post-mortems and SLA records; the type taxonomy, custom fields, task templates, SLA
targets and business-hours clock (seeded with defaults), and the alert grouping rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incident_field_definitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_field_definitions')),
    sa.UniqueConstraint('key', name=op.f('uq_incident_field_definitions_key'))
    )
    op.create_table('incident_grouping_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('match_on', sa.String(length=20), nullable=False),
    sa.Column('window_minutes', sa.Integer(), nullable=False),
    sa.Column('min_level', sa.String(length=20), nullable=False),
    sa.Column('type_key', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_grouping_rules')),
    sa.UniqueConstraint('name', name=op.f('uq_incident_grouping_rules_name'))
    )
    op.create_table('incident_sla_calendar',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('day_start', sa.String(length=5), nullable=False),
    sa.Column('day_end', sa.String(length=5), nullable=False),
    sa.Column('warn_ratio', sa.Double(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_sla_calendar'))
    )
    op.create_table('incident_sla_targets',
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('acknowledge_minutes', sa.Integer(), nullable=False),
    sa.Column('contain_minutes', sa.Integer(), nullable=False),
    sa.Column('resolve_minutes', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=20), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('severity', name=op.f('pk_incident_sla_targets'))
    )
    op.create_table('incident_types',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_types')),
    sa.UniqueConstraint('key', name=op.f('uq_incident_types_key'))
    )
    op.create_table('incident_task_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=True),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['type_id'], ['incident_types.id'],
        name=op.f('fk_incident_task_templates_type_id_incident_types'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_task_templates'))
    )
    with op.batch_alter_table('incident_task_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_task_templates_type_id'), ['type_id'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('affected_assets', sa.JSON(), nullable=False),
    sa.Column('affected_users', sa.JSON(), nullable=False),
    sa.Column('business_lines', sa.JSON(), nullable=False),
    sa.Column('affected_data', sa.JSON(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('team', sa.String(length=100), nullable=False),
    sa.Column('participants', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('custom_fields', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('contained_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_incidents_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['type_id'], ['incident_types.id'], name=op.f('fk_incidents_type_id_incident_types')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_incidents_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('ref', name=op.f('uq_incidents_ref'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_phase'), ['phase'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_team'), ['team'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_type_id'), ['type_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_unit_id'), ['unit_id'], unique=False)

    op.create_table('incident_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('linked_by', sa.String(length=64), nullable=False),
    sa.Column('linked_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'],
        name=op.f('fk_incident_alerts_alert_id_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_alerts_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_alerts')),
    sa.UniqueConstraint('alert_id', name=op.f('uq_incident_alerts_alert_id'))
    )
    with op.batch_alter_table('incident_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_alerts_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('mentions', sa.JSON(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'],
        name=op.f('fk_incident_comments_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_comments_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_comments'))
    )
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_comments_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_observables',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=2048), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('malicious', sa.Boolean(), nullable=False),
    sa.Column('added_by', sa.String(length=64), nullable=False),
    sa.Column('added_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_observables_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_observables')),
    sa.UniqueConstraint('incident_id', 'type', 'value', name=op.f('uq_incident_observables_incident_id'))
    )
    with op.batch_alter_table('incident_observables', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_observables_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_observables_value'), ['value'], unique=False)

    op.create_table('incident_phase_spans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('entered_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('entered_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_phase_spans_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_phase_spans'))
    )
    with op.batch_alter_table('incident_phase_spans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_phase_spans_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_postmortems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('timeline', sa.Text(), nullable=False),
    sa.Column('impact', sa.Text(), nullable=False),
    sa.Column('root_cause', sa.Text(), nullable=False),
    sa.Column('five_whys', sa.JSON(), nullable=False),
    sa.Column('went_well', sa.Text(), nullable=False),
    sa.Column('went_badly', sa.Text(), nullable=False),
    sa.Column('action_items', sa.JSON(), nullable=False),
    sa.Column('submitted_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'],
        name=op.f('fk_incident_postmortems_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_postmortems_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_postmortems')),
    sa.UniqueConstraint('incident_id', name=op.f('uq_incident_postmortems_incident_id'))
    )
    op.create_table('incident_sla_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('due_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_sla_records_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_sla_records')),
    sa.UniqueConstraint('incident_id', 'metric', 'kind', name=op.f('uq_incident_sla_records_incident_id'))
    )
    with op.batch_alter_table('incident_sla_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_sla_records_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('from_phase', sa.String(length=20), nullable=True),
    sa.Column('to_phase', sa.String(length=20), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_status_changes_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_status_changes'))
    )
    with op.batch_alter_table('incident_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_status_changes_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_status_changes_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('due_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=64), nullable=True),
    sa.Column('done_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'],
        name=op.f('fk_incident_tasks_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_tasks_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['template_id'], ['incident_task_templates.id'],
        name=op.f('fk_incident_tasks_template_id_incident_task_templates'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_tasks'))
    )
    with op.batch_alter_table('incident_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_tasks_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_timeline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
        name=op.f('fk_incident_timeline_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_timeline'))
    )
    with op.batch_alter_table('incident_timeline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_timeline_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_timeline_incident_id'), ['incident_id'], unique=False)

    _seed()


TYPES = [
    ("malware", "Malware", "恶意代码"),
    ("intrusion", "Intrusion", "网络入侵"),
    ("account_compromise", "Account compromise", "账号失陷"),
    ("phishing", "Phishing", "网络钓鱼"),
    ("data_leak", "Data leak", "数据泄露"),
    ("ddos", "DDoS", "拒绝服务攻击"),
    ("web_attack", "Web attack", "Web 攻击"),
    ("vulnerability_exploitation", "Vulnerability exploitation", "漏洞利用"),
    ("insider", "Insider", "内部威胁"),
    ("other", "Other", "其他"),
]
# severity: minutes to acknowledge, contain, resolve; clock
SLA_TARGETS = [
    ("P1", 15, 240, 1440, "24x7"),
    ("P2", 30, 480, 4320, "24x7"),
    ("P3", 240, 1440, 10080, "business"),
    ("P4", 1440, 4320, 43200, "business"),
]
# Every incident type gets these when it enters the phase; required ones gate leaving it.
TEMPLATES = [
    ("identify", "Classify the incident: type, cause and scope of impact", True),
    ("contain", "Stop the loss: contain the affected systems and accounts", True),
    ("eradicate", "Find the root cause and remove it", True),
    ("recover", "Verify every affected system is back to a safe state", True),
    ("review", "Write the post-mortem and have it approved", False),
]


def _seed() -> None:
    now = datetime.now(UTC)
    types = sa.table("incident_types", sa.column("id", sa.Integer), sa.column("key", sa.String),
                     sa.column("names", sa.JSON), sa.column("enabled", sa.Boolean), sa.column("position", sa.Integer))
    op.bulk_insert(types, [{"id": i + 1, "key": key, "names": {"en": en, "zh_CN": zh}, "enabled": True, "position": i}
                           for i, (key, en, zh) in enumerate(TYPES)])
    targets = sa.table("incident_sla_targets", sa.column("severity", sa.String),
                       sa.column("acknowledge_minutes", sa.Integer), sa.column("contain_minutes", sa.Integer),
                       sa.column("resolve_minutes", sa.Integer), sa.column("clock", sa.String),
                       sa.column("updated_by", sa.String), sa.column("updated_at", vigil.core.db.UTCDateTime()))
    op.bulk_insert(targets, [{"severity": sev, "acknowledge_minutes": ack, "contain_minutes": contain,
                              "resolve_minutes": resolve, "clock": clock, "updated_by": "", "updated_at": now}
                             for sev, ack, contain, resolve, clock in SLA_TARGETS])
    calendar = sa.table("incident_sla_calendar", sa.column("id", sa.Integer), sa.column("timezone", sa.String),
                        sa.column("weekdays", sa.JSON), sa.column("day_start", sa.String),
                        sa.column("day_end", sa.String), sa.column("warn_ratio", sa.Float),
                        sa.column("updated_by", sa.String), sa.column("updated_at", vigil.core.db.UTCDateTime()))
    op.bulk_insert(calendar, [{"id": 1, "timezone": "Asia/Shanghai", "weekdays": [0, 1, 2, 3, 4],
                               "day_start": "09:00", "day_end": "18:00", "warn_ratio": 0.8, "updated_by": "",
                               "updated_at": now}])
    templates = sa.table("incident_task_templates", sa.column("type_id", sa.Integer), sa.column("phase", sa.String),
                         sa.column("title", sa.String), sa.column("description", sa.Text),
                         sa.column("required", sa.Boolean), sa.column("position", sa.Integer))
    op.bulk_insert(templates, [{"type_id": None, "phase": phase, "title": title, "description": "",
                                "required": required, "position": i}
                               for i, (phase, title, required) in enumerate(TEMPLATES)])
    if op.get_bind().dialect.name == "postgresql":  # ids given by hand: move the sequence past them
        op.execute("SELECT setval('incident_types_id_seq', (SELECT max(id) FROM incident_types))")


def downgrade() -> None:
    with op.batch_alter_table('incident_timeline', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_timeline_incident_id'))
        batch_op.drop_index(batch_op.f('ix_incident_timeline_at'))

    op.drop_table('incident_timeline')
    with op.batch_alter_table('incident_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_tasks_incident_id'))

    op.drop_table('incident_tasks')
    with op.batch_alter_table('incident_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_status_changes_incident_id'))
        batch_op.drop_index(batch_op.f('ix_incident_status_changes_at'))

    op.drop_table('incident_status_changes')
    with op.batch_alter_table('incident_sla_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_sla_records_incident_id'))

    op.drop_table('incident_sla_records')
    op.drop_table('incident_postmortems')
    with op.batch_alter_table('incident_phase_spans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_phase_spans_incident_id'))

    op.drop_table('incident_phase_spans')
    with op.batch_alter_table('incident_observables', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_observables_value'))
        batch_op.drop_index(batch_op.f('ix_incident_observables_incident_id'))

    op.drop_table('incident_observables')
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_comments_incident_id'))

    op.drop_table('incident_comments')
    with op.batch_alter_table('incident_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_alerts_incident_id'))

    op.drop_table('incident_alerts')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_unit_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_type_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_team'))
        batch_op.drop_index(batch_op.f('ix_incidents_status'))
        batch_op.drop_index(batch_op.f('ix_incidents_severity'))
        batch_op.drop_index(batch_op.f('ix_incidents_phase'))
        batch_op.drop_index(batch_op.f('ix_incidents_owner_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_created_at'))

    op.drop_table('incidents')
    with op.batch_alter_table('incident_task_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_task_templates_type_id'))

    op.drop_table('incident_task_templates')
    op.drop_table('incident_types')
    op.drop_table('incident_sla_targets')
    op.drop_table('incident_sla_calendar')
    op.drop_table('incident_grouping_rules')
    op.drop_table('incident_field_definitions')
