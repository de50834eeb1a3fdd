"""DLQ entries, DLQ retry runs and the DLQ audit log.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    _create_tasks()
    _create_retry_runs()
    _create_audit_log()


def _create_tasks() -> None:
    op.create_table(
        "dlq_tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("task_name", sa.String(200), nullable=False),
        sa.Column("celery_task_id", sa.String(155), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("last_retry_at", TZ, nullable=True),
        sa.Column("next_retry_at", TZ, nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("task_args", postgresql.JSONB(), nullable=False),
        sa.Column("task_kwargs", postgresql.JSONB(), nullable=False),
        sa.Column("retry_history", postgresql.JSONB(), nullable=False),
        sa.Column("context", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dlq_tasks"),
        sa.CheckConstraint(
            "status IN ('pending', 'retrying', 'failed', 'abandoned', 'resolved')",
            name="ck_dlq_tasks_status",
        ),
    )
    # Listing: each index carries the other filter columns, so a page is
    # found by an index-only scan.
    op.create_index(
        "ix_dlq_tasks_open_created_at",
        "dlq_tasks",
        ["created_at", "id"],
        postgresql_include=["category", "task_name"],
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    for column, others in (
        ("status", ["category", "task_name"]),
        ("category", ["status", "task_name"]),
        ("task_name", ["status", "category"]),
    ):
        op.create_index(
            f"ix_dlq_tasks_{column}_created_at",
            "dlq_tasks",
            [column, "created_at", "id"],
            postgresql_include=others,
        )
    # Statistics: one index-only scan of the window.
    op.create_index(
        "ix_dlq_tasks_stats",
        "dlq_tasks",
        ["created_at"],
        postgresql_include=["status", "category", "task_name", "retry_count"],
    )
    op.create_index("ix_dlq_tasks_correlation_id", "dlq_tasks", ["correlation_id"])
    op.create_index(
        "ix_dlq_tasks_due",
        "dlq_tasks",
        ["next_retry_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def _create_retry_runs() -> None:
    op.create_table(
        "dlq_retry_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("task_name", sa.String(200), nullable=False),
        sa.Column("celery_task_id", sa.String(155), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("enqueued_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dlq_retry_runs"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["dlq_tasks.id"],
            name="fk_dlq_retry_runs_entry_id_dlq_tasks",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("celery_task_id", name="uq_dlq_retry_runs_celery_task_id"),
        sa.CheckConstraint(
            "trigger IN ('automatic', 'manual')", name="ck_dlq_retry_runs_trigger"
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('succeeded', 'failed')",
            name="ck_dlq_retry_runs_outcome",
        ),
    )
    op.create_index("ix_dlq_retry_runs_entry_id", "dlq_retry_runs", ["entry_id"])
    op.create_index(
        "ix_dlq_retry_runs_finished_at",
        "dlq_retry_runs",
        ["finished_at"],
        postgresql_include=["outcome"],
    )
    op.create_index(
        "ix_dlq_retry_runs_task_name_finished_at",
        "dlq_retry_runs",
        ["task_name", "finished_at"],
    )


def _create_audit_log() -> None:
    op.create_table(
        "dlq_audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dlq_audit_log"),
    )
    op.create_index("ix_dlq_audit_log_entry_id_at", "dlq_audit_log", ["entry_id", "at"])


def downgrade() -> None:
    op.drop_table("dlq_audit_log")
    op.drop_table("dlq_retry_runs")
    op.drop_table("dlq_tasks")
