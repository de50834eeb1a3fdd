"""Sessions, session events and checkpoints.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "onboarding_sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("conversation_type", sa.String(40), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_activity_at", TZ, nullable=False),
        sa.Column("current_state", sa.String(40), nullable=False),
        sa.Column("furthest_stage", sa.SmallInteger(), nullable=False),
        sa.Column("collecting_at", TZ, nullable=True),
        sa.Column("recommendations_at", TZ, nullable=True),
        sa.Column("approval_at", TZ, nullable=True),
        sa.Column("completed_at", TZ, nullable=True),
        sa.Column("questions_answered", sa.Integer(), nullable=False),
        sa.Column("questions_repeated", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error_type", sa.String(60), nullable=True),
        sa.Column("last_error_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_onboarding_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_onboarding_sessions_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_onboarding_sessions_started_at", "onboarding_sessions", ["started_at"]
    )
    op.create_index(
        "ix_onboarding_sessions_user_id", "onboarding_sessions", ["user_id"]
    )
    op.create_index(
        "ix_onboarding_sessions_client_started",
        "onboarding_sessions",
        ["client_id", "started_at"],
    )
    op.create_index(
        "ix_onboarding_sessions_last_activity_at",
        "onboarding_sessions",
        ["last_activity_at"],
    )

    op.create_table(
        "session_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("session_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("client_event_id", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_session_events"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["onboarding_sessions.id"],
            name="fk_session_events_session_id_onboarding_sessions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "session_id", "client_event_id", name="uq_session_events_session_id"
        ),
    )
    op.create_index(
        "ix_session_events_session_occurred",
        "session_events",
        ["session_id", "occurred_at"],
    )
    op.create_index(
        "ix_session_events_type_occurred",
        "session_events",
        ["event_type", "occurred_at"],
    )

    op.create_table(
        "session_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("session_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("checkpoint_hash", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_session_checkpoints"),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_session_checkpoints_created_by_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "session_id", "version", name="uq_session_checkpoints_session_id"
        ),
    )
    op.create_index(
        "ix_session_checkpoints_created_at", "session_checkpoints", ["created_at"]
    )


def downgrade() -> None:
    op.drop_table("session_checkpoints")
    op.drop_table("session_events")
    op.drop_table("onboarding_sessions")
