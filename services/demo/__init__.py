"""The demo workload: ``onboarding demo`` and ``onboarding dev --demo``.

A seeded, realistic workload sent through the public APIs, so that a local
stack has something to show on every endpoint:

- ``generator``: the plan, a pure function of the seed, the size, the number
  of past days and the moment it ends;
- ``accounts``: the demo users it belongs to and their API keys;
- ``driver``: sends the plan's sessions, events, checkpoints and resumes
  through the REST gateway;
- ``tasks``: enqueues the plan's onboarding Celery tasks, some of which fail
  into the DLQ;
- ``run``: the command itself, with its progress bar and summary.
"""
