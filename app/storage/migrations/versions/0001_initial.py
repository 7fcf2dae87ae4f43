"""The schema of the first release: code_sessions and executions with their indexes.

A database made by an engine from before migrations (db.create_all(), no alembic_version table)
is adopted: whatever tables, columns and indexes it already has are kept with their rows, and
only the missing ones are added. The same makes a half-applied run of this migration on SQLite
(whose DDL is not transactional) safe to run again.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (name, table, columns)
INDEXES = (
    ("ix_code_sessions_updated_at", "code_sessions", ["updated_at"]),
    ("ix_executions_session_queued", "executions", ["session_id", "queued_at"]),
    ("ix_executions_status_queued", "executions", ["status", "queued_at"]),
    ("ix_executions_owner_queued", "executions", ["owner", "queued_at"]),
)


def added_later() -> list[sa.Column]:
    """Columns later engines added to executions with ALTER TABLE (models.upgrade_schema, now gone)."""
    return [
        sa.Column("owner", sa.String(80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    ]


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "code_sessions" not in tables:
        op.create_table(
            "code_sessions",
            sa.Column("id", sa.String(36), nullable=False),
            sa.Column("language", sa.String(32), nullable=False),
            sa.Column("source_code", sa.Text(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "executions" not in tables:
        op.create_table(
            "executions",
            sa.Column("id", sa.String(36), nullable=False),
            sa.Column("session_id", sa.String(36), nullable=True),
            sa.Column("language", sa.String(32), nullable=False),
            sa.Column("source_code", sa.Text(), nullable=False),
            sa.Column("stdin", sa.Text(), nullable=False),
            sa.Column("idempotency_key", sa.String(200), nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("stdout", sa.Text(), nullable=False),
            sa.Column("stderr", sa.Text(), nullable=False),
            sa.Column("exit_code", sa.Integer(), nullable=True),
            sa.Column("execution_time_ms", sa.Integer(), nullable=True),
            sa.Column("compile_time_ms", sa.Integer(), nullable=True),
            sa.Column("stdout_truncated", sa.Boolean(), nullable=False),
            sa.Column("stderr_truncated", sa.Boolean(), nullable=False),
            sa.Column("error", sa.String(64), nullable=True),
            sa.Column("limits", sa.Text(), nullable=True),
            sa.Column("queued_at", sa.DateTime(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=True),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.Column("claimed_by", sa.String(64), nullable=True),
            sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
            *added_later(),
            sa.ForeignKeyConstraint(["session_id"], ["code_sessions.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("session_id", "idempotency_key", name="uq_executions_idempotency"),
        )
    else:
        present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("executions")}
        for column in added_later():
            if column.name not in present:
                op.add_column("executions", column)
        # runs from before the owner column are charged to their session, as new ones are
        op.execute("UPDATE executions SET owner = session_id WHERE owner IS NULL AND session_id IS NOT NULL")
    inspector = sa.inspect(op.get_bind())
    indexed = {index["name"] for table in ("code_sessions", "executions") for index in inspector.get_indexes(table)}
    for name, table, columns in INDEXES:
        if name not in indexed:
            op.create_index(name, table, columns)


def downgrade() -> None:
    op.drop_table("executions")
    op.drop_table("code_sessions")
