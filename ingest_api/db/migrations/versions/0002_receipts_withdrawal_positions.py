"""captions, withdrawal and consented positions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("caption", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("client_filename", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_positions_submission_id", "positions", ["submission_id"])


def downgrade() -> None:
    op.drop_index("ix_positions_submission_id", table_name="positions")
    op.drop_table("positions")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("withdrawn_at")
        batch.drop_column("client_filename")
        batch.drop_column("caption")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("withdrawn_at")
