"""Partial index for the abandonment risk's complexity baseline.

The risk of a session compares its answered questions with the average of the
completed sessions of the same client and conversation type; this index lets
PostgreSQL compute that average from the index alone.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_onboarding_sessions_completed_baseline",
        "onboarding_sessions",
        ["client_id", "conversation_type", "questions_answered"],
        postgresql_where=sa.text("completed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_onboarding_sessions_completed_baseline", table_name="onboarding_sessions"
    )
