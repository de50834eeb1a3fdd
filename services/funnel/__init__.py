"""Funnel analytics: how sessions move through the onboarding stages.

The figures are computed in PostgreSQL from ``onboarding_sessions``, the
per-session rollup of the session events, and from the funnel rollups that
migration 0005 keeps current on every write to it. Each endpoint's figures
come from a reusable coroutine taking an ``AsyncSession``:

- ``metrics.funnel_metrics``: stages, outcomes, drop-off points;
- ``heatmap.heatmap_metrics``: drop-offs by start-time bucket and hour;
- ``cohorts.cohort_comparison``: conversion by client, type or language;
- ``recommendations.recommendations_report``: rule-based recommendations;
- ``realtime.realtime_metrics``: live figures of the last hours;
- ``comparison.period_comparison``: two periods and a significance test.

Open the transaction with ``rollup.begin_consistent_read`` so that the
queries behind one set of figures see the same sessions. The definitions are
in ``docs/funnel-definitions.md``.
"""
