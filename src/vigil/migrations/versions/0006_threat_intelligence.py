"""threat intelligence

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 02:04:59.568429
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.db

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intel_entities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('attack_ids', sa.JSON(), nullable=False),
    sa.Column('related', sa.JSON(), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('first_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_entities')),
    sa.UniqueConstraint('kind', 'name', name='uq_intel_entities_kind_name')
    )
    with op.batch_alter_table('intel_entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_entities_kind'), ['kind'], unique=False)

    op.create_table('intel_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=40), nullable=False),
    sa.Column('preset', sa.String(length=40), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('auth_header', sa.String(length=100), nullable=False),
    sa.Column('auth_value', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('interval_minutes', sa.Integer(), nullable=False),
    sa.Column('replace', sa.Boolean(), nullable=False),
    sa.Column('decay', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Integer(), nullable=True),
    sa.Column('tlp', sa.String(length=20), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('last_attempt_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('next_pull_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('indicator_count', sa.Integer(), nullable=False),
    sa.Column('etag', sa.Text(), nullable=False),
    sa.Column('last_modified', sa.String(length=100), nullable=False),
    sa.Column('cursor', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_feeds')),
    sa.UniqueConstraint('name', name=op.f('uq_intel_feeds_name'))
    )
    op.create_table('intel_retrohunts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=300), nullable=False),
    sa.Column('indicators', sa.Integer(), nullable=False),
    sa.Column('since', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('until', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('sightings', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_retrohunts'))
    )
    op.create_table('intel_pulls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('started_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', vigil.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('received', sa.Integer(), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Integer(), nullable=False),
    sa.Column('entities', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('warninglisted', sa.Integer(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['intel_feeds.id'],
                            name=op.f('fk_intel_pulls_feed_id_intel_feeds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_pulls'))
    )
    with op.batch_alter_table('intel_pulls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_pulls_feed_id'), ['feed_id'], unique=False)

    op.create_table('intel_sightings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=False),
    sa.Column('observed', sa.Text(), nullable=False),
    sa.Column('event_source', sa.String(length=300), nullable=False),
    sa.Column('host', sa.String(length=300), nullable=True),
    sa.Column('first_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('retroactive', sa.Boolean(), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('suppressed_by', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'],
                            name=op.f('fk_intel_sightings_alert_id_alerts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_intel_sightings_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_sightings'))
    )
    with op.batch_alter_table('intel_sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_sightings_dedup_key'), ['dedup_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_sightings_indicator_id'), ['indicator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_sightings_unit_id'), ['unit_id'], unique=False)

    op.create_table('intel_allowlist',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('sighting_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', vigil.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sighting_id'], ['intel_sightings.id'],
                            name=op.f('fk_intel_allowlist_sighting_id_intel_sightings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_allowlist')),
    sa.UniqueConstraint('type', 'value', name='uq_intel_allowlist_type_value')
    )


def downgrade() -> None:
    op.drop_table('intel_allowlist')
    with op.batch_alter_table('intel_sightings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_sightings_unit_id'))
        batch_op.drop_index(batch_op.f('ix_intel_sightings_indicator_id'))
        batch_op.drop_index(batch_op.f('ix_intel_sightings_dedup_key'))

    op.drop_table('intel_sightings')
    with op.batch_alter_table('intel_pulls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_pulls_feed_id'))

    op.drop_table('intel_pulls')
    op.drop_table('intel_retrohunts')
    op.drop_table('intel_feeds')
    with op.batch_alter_table('intel_entities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_entities_kind'))

    op.drop_table('intel_entities')
