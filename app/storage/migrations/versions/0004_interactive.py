"""Interactive runs and stopping: the interactive flag, a stop request, the transcript, and stdin sent while a run runs.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("interactive", sa.Boolean(), nullable=False, server_default=sa.false()))
        # set by POST cancel for the engine process that runs it, wherever the request landed
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(), nullable=True))
        # interleaved stdin, stdout and stderr of an interactive run, as JSON
        batch.add_column(sa.Column("transcript", sa.Text(), nullable=True))
    op.create_table(
        "execution_stdin",
        sa.Column("execution_id", sa.String(36), sa.ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("eof", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("execution_stdin")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("transcript")
        batch.drop_column("cancel_requested_at")
        batch.drop_column("interactive")
