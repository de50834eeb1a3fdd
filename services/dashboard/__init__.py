"""Analytics dashboards built on the funnel and session computations.

Each endpoint's figures come from a coroutine taking an ``AsyncSession``,
which reuses the funnel rollups (``services.funnel``) and the session
recovery models (``services.sessions``) rather than computing anew:

- ``overview.overview``: funnel, recovery and risk of the last hours;
- ``heatmap.dashboard_heatmap``: sessions per stage per time period;
- ``replay.session_replay``: one session's timeline;
- ``trends.cohort_trends``: conversion per start-date cohort and its trend.

The definitions are in ``docs/dashboard-definitions.md``.
"""
