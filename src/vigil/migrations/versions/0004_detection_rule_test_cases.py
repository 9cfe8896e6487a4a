"""detection rule test cases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 23:38:55.670811
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rules already stored get no test cases (the starter pack's are filled at its next install).
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tests', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.drop_column('tests')
