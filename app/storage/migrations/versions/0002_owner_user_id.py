"""Access control: the user (a JWT's sub) who owns each session and execution.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # null: made while access control was off (or before it existed); no user may see those when it is on
    op.add_column("code_sessions", sa.Column("owner_user_id", sa.String(255), nullable=True))
    op.add_column("executions", sa.Column("owner_user_id", sa.String(255), nullable=True))
    # per-user rate limits count a user's recent runs
    op.create_index("ix_executions_user_queued", "executions", ["owner_user_id", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_executions_user_queued", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("owner_user_id")
    with op.batch_alter_table("code_sessions") as batch:
        batch.drop_column("owner_user_id")
