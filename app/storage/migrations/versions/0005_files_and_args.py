"""Multi-file programs and run arguments: a session's other files, and the files and arguments a run had.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON text; null for rows from before (a program of one file, run without arguments)
    op.add_column("code_sessions", sa.Column("files", sa.Text(), nullable=True))
    op.add_column("executions", sa.Column("files", sa.Text(), nullable=True))
    op.add_column("executions", sa.Column("args", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("args")
        batch.drop_column("files")
    with op.batch_alter_table("code_sessions") as batch:
        batch.drop_column("files")
