"""Session intake, checkpoints, resume and abandonment risk.

- ``intake``, ``events``, ``eventstore``: StartSession and RecordEvents; the
  events every analytic (funnel, replay) is computed from, and the per-session
  rollup row kept up to date as they arrive.
- ``checkpoints``, ``hotcopy``, ``retention``: versioned checkpoints in
  PostgreSQL with hot copies in Redis, and their pruning.
- ``risk``, ``risk_model``, ``interventions``: the abandonment score (see
  docs/risk-model.md), its probability and the recommended intervention.
- ``servicer``: the gRPC face, ``access``: who may reach which session.
"""
