"""Graded runs: test suites, and an execution's kind, suite and grade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_suites",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("checker", sa.Text(), nullable=False),
        sa.Column("time_limit_ms", sa.Integer(), nullable=False),
        sa.Column("memory_limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("total_time_limit_ms", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("owner_user_id", sa.String(255), nullable=True),
    )
    # every run made before this migration was a plain run
    op.add_column("executions", sa.Column("kind", sa.String(8), nullable=False, server_default="run"))
    op.add_column("executions", sa.Column("test_suite_id", sa.String(36), nullable=True))
    op.add_column("executions", sa.Column("grade", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("grade")
        batch.drop_column("test_suite_id")
        batch.drop_column("kind")
    op.drop_table("test_suites")
