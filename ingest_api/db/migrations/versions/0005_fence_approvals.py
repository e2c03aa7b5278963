"""supervisors' approvals of search fences larger than the configured limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fence_approvals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("approver_role", sa.String(length=20), nullable=False),
        sa.Column("max_radius_m", sa.Float(), nullable=False),
        sa.Column("max_window_s", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fence_approvals_case_id", "fence_approvals", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_fence_approvals_case_id", table_name="fence_approvals")
    op.drop_table("fence_approvals")
