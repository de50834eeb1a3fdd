"""Funnel rollups kept up to date on write, and an index for realtime figures.

Every funnel figure is a sum over sessions of per-session measures (see
``docs/funnel-definitions.md``). ``funnel_session_measures`` computes those
measures for one ``onboarding_sessions`` row; statement-level triggers add
the measures of inserted rows to three rollups and subtract those of deleted
rows, so a bulk COPY costs one aggregate and an activity-only update, whose
measures do not change, writes nothing. Queries sum whole buckets from a
rollup and read the partial buckets at a period's edges from the view
``funnel_session_facts``. Whether a session is abandoned depends on the time
of the query, so no rollup stores it: queries subtract the few sessions
that are still active.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN_STATES = (
    "STARTED",
    "INITIAL_PROMPT",
    "COLLECTING_INFO",
    "ASKING_QUESTIONS",
    "GENERATING_RECOMMENDATIONS",
    "AWAITING_APPROVAL",
    "PENDING_APPROVAL",
)
STAGE_COLUMNS = (
    "started_at",
    "collecting_at",
    "recommendations_at",
    "approval_at",
    "completed_at",
)
# The session columns the measures are computed from, in argument order.
INPUTS = (
    ("last_activity_at", "timestamptz"),
    ("current_state", "text"),
    ("furthest_stage", "int"),
    *((column, "timestamptz") for column in STAGE_COLUMNS),
    ("questions_repeated", "int"),
    ("last_error_type", "text"),
    ("last_error_at", "timestamptz"),
)
OPEN = "furthest_stage < 4"
ERROR_IS_LAST = "last_error_at >= last_activity_at"


def _micros(interval: str) -> str:
    return f"coalesce((extract(epoch FROM {interval}) * 1000000)::bigint, 0)"


def _duration_measures() -> list[tuple[str, str, str]]:
    measures = []
    for k in range(4):
        begin, end = STAGE_COLUMNS[k], STAGE_COLUMNS[k + 1]
        interval = f"({end} - {begin})"
        measures += [
            (f"dur{k}_n", "int", f"({begin} IS NOT NULL AND {end} IS NOT NULL)::int"),
            (f"dur{k}_us", "bigint", _micros(interval)),
            (
                f"dur{k}_sq",
                "float8",
                f"coalesce(extract(epoch FROM {interval})::float8 ^ 2, 0)",
            ),
        ]
    return measures


# (column, type, expression over one session row), summed by the rollups.
MEASURES: list[tuple[str, str, str]] = [
    ("sessions", "int", "1"),
    *((f"reached_{k}", "int", f"(furthest_stage >= {k})::int") for k in range(1, 5)),
    ("open", "int", f"({OPEN})::int"),
    *(
        (f"open_{s.lower()}", "int", f"({OPEN} AND current_state = '{s}')::int")
        for s in OPEN_STATES
    ),
    ("completion_n", "int", "(furthest_stage = 4 AND completed_at IS NOT NULL)::int"),
    (
        "completion_us",
        "bigint",
        "CASE WHEN furthest_stage = 4 THEN "
        + _micros("(completed_at - started_at)")
        + " ELSE 0 END",
    ),
    *_duration_measures(),
    (
        "repeat_n",
        "int",
        "(furthest_stage >= 1 AND questions_repeated > 0)::int",
    ),
    (
        "repeat_open",
        "int",
        f"(furthest_stage >= 1 AND {OPEN} AND questions_repeated > 0)::int",
    ),
    ("reached_1_open", "int", f"(furthest_stage >= 1 AND {OPEN})::int"),
    ("noerr_n", "int", "(last_error_type IS NULL)::int"),
    ("noerr_open", "int", f"(last_error_type IS NULL AND {OPEN})::int"),
]
# Measures of sessions by their last error type: abandoned sessions whose
# last event was that error, by the state they stopped in.
STOPPED: list[tuple[str, str, str]] = [
    (
        f"stopped_{s.lower()}",
        "int",
        f"({OPEN} AND current_state = '{s}' AND {ERROR_IS_LAST})::int",
    )
    for s in OPEN_STATES
]
ERROR_MEASURES = ["sessions", "open", *(name for name, _, _ in STOPPED)]

DAY = "date_trunc('day', started_at, 'UTC')"
HOUR = "date_trunc('hour', started_at, 'UTC')"

# name, key columns with their types and expressions, measures, row filter.
ROLLUPS = (
    (
        "funnel_daily_rollup",
        [
            ("day", "timestamptz", DAY),
            ("client_id", "int", "client_id"),
            ("conversation_type", "varchar(40)", "conversation_type"),
            ("language", "varchar(16)", "language"),
        ],
        [name for name, _, _ in MEASURES],
        "true",
    ),
    (
        "funnel_hourly_rollup",
        [("hour", "timestamptz", HOUR)],
        [name for name, _, _ in MEASURES],
        "true",
    ),
    (
        "funnel_error_rollup",
        [
            ("day", "timestamptz", DAY),
            ("client_id", "int", "client_id"),
            ("conversation_type", "varchar(40)", "conversation_type"),
            ("error_type", "varchar(60)", "last_error_type"),
        ],
        ERROR_MEASURES,
        "last_error_type IS NOT NULL",
    ),
)
TYPES = {name: kind for name, kind, _ in [*MEASURES, *STOPPED]}
# Per-bucket counts fit int; sums of microseconds need bigint.
ROLLUP_TYPES = {"int": "integer", "bigint": "bigint", "float8": "double precision"}


def _measures_function() -> str:
    params = ", ".join(f"{name} {kind}" for name, kind in INPUTS)
    columns = ", ".join(f"{name} {kind}" for name, kind, _ in [*MEASURES, *STOPPED])
    select = ",\n    ".join(f"{expr}" for _, _, expr in [*MEASURES, *STOPPED])
    return f"""
CREATE FUNCTION funnel_session_measures({params})
RETURNS TABLE ({columns})
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT
    {select}
$$"""


def _facts_view() -> str:
    args = ", ".join(f"s.{name}" for name, _ in INPUTS)
    return f"""
CREATE VIEW funnel_session_facts AS
SELECT s.id, s.started_at, s.last_activity_at, s.client_id,
       s.conversation_type, s.language, s.furthest_stage, s.current_state,
       s.last_error_type, m.*
FROM onboarding_sessions s
CROSS JOIN LATERAL funnel_session_measures({args}) m"""


def _apply(rollup: tuple, source: str) -> str:
    """Add sign x measures of the rows of ``source`` to one rollup."""
    table, keys, measures, where = rollup
    args = ", ".join(f"c.{name}" for name, _ in INPUTS)
    inputs = ", ".join(f"c.{name}" for name, _ in INPUTS)
    key_exprs = ", ".join(f"{expr} AS {name}" for name, _, expr in keys)
    key_names = ", ".join(name for name, _, _ in keys)
    sums = ", ".join(f"sum(c.sign * m.{name}) AS {name}" for name in measures)
    zero = ", ".join("0" for _ in measures)
    columns = ", ".join(measures)
    updates = ", ".join(f"{name} = t.{name} + EXCLUDED.{name}" for name in measures)
    return f"""
INSERT INTO {table} AS t ({key_names}, {columns})
SELECT * FROM (
    SELECT {key_names}, {sums}
    FROM (
        SELECT {key_exprs}, c.sign, {inputs} FROM ({source}) c WHERE {where}
    ) c
    CROSS JOIN LATERAL funnel_session_measures({args}) m
    GROUP BY {key_names}
) d
WHERE ({columns}) IS DISTINCT FROM ({zero})
ORDER BY {key_names}
ON CONFLICT ({key_names}) DO UPDATE SET {updates}"""


SOURCES = {
    "insert": "SELECT 1 AS sign, * FROM new_rows",
    "delete": "SELECT -1 AS sign, * FROM old_rows",
    "update": "SELECT 1 AS sign, * FROM new_rows "
    "UNION ALL SELECT -1 AS sign, * FROM old_rows",
}
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _trigger_function(operation: str) -> str:
    statements = ";\n".join(_apply(r, SOURCES[operation]) for r in ROLLUPS)
    return f"""
CREATE FUNCTION funnel_rollup_on_{operation}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
{statements};
RETURN NULL;
END
$$"""


def _create_rollup(rollup: tuple) -> str:
    table, keys, measures, _ = rollup
    key_columns = [f"{name} {kind} NOT NULL" for name, kind, _ in keys]
    measure_columns = [
        f"{name} {ROLLUP_TYPES[TYPES[name]]} NOT NULL DEFAULT 0" for name in measures
    ]
    primary_key = ", ".join(name for name, _, _ in keys)
    columns = ",\n    ".join([*key_columns, *measure_columns])
    return f"""
CREATE TABLE {table} (
    {columns},
    CONSTRAINT pk_{table} PRIMARY KEY ({primary_key})
)"""


def upgrade() -> None:
    for rollup in ROLLUPS:
        op.execute(_create_rollup(rollup))
    # A client's funnel reads its own rollup rows only.
    for table in ("funnel_daily_rollup", "funnel_error_rollup"):
        op.execute(f"CREATE INDEX ix_{table}_client_day ON {table} (client_id, day)")
    op.execute(_measures_function())
    op.execute(_facts_view())
    for operation in SOURCES:
        op.execute(_trigger_function(operation))
        op.execute(
            f"CREATE TRIGGER funnel_rollup_{operation} AFTER {operation.upper()} "
            f"ON onboarding_sessions {TRANSITIONS[operation]} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollup_on_{operation}()"
        )
    tables = ", ".join(table for table, _, _, _ in ROLLUPS)
    op.execute(
        "CREATE FUNCTION funnel_rollup_on_truncate() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN TRUNCATE {tables}; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER funnel_rollup_truncate AFTER TRUNCATE ON onboarding_sessions "
        "FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollup_on_truncate()"
    )
    # Sessions stored before this revision.
    for rollup in ROLLUPS:
        op.execute(_apply(rollup, "SELECT 1 AS sign, * FROM onboarding_sessions"))
    # Realtime counts sessions completed in the last hours, whenever started.
    op.execute(
        "CREATE INDEX ix_onboarding_sessions_completed_at ON onboarding_sessions "
        "(completed_at) WHERE completed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_onboarding_sessions_completed_at")
    for operation in [*SOURCES, "truncate"]:
        op.execute(f"DROP TRIGGER funnel_rollup_{operation} ON onboarding_sessions")
        op.execute(f"DROP FUNCTION funnel_rollup_on_{operation}()")
    op.execute("DROP VIEW funnel_session_facts")
    params = ", ".join(kind for _, kind in INPUTS)
    op.execute(f"DROP FUNCTION funnel_session_measures({params})")
    for table, _, _, _ in ROLLUPS:
        op.execute(f"DROP TABLE {table}")
