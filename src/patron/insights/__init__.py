"""Insights: what patron tells about customers and runs, computed once for every interface to show as it is.

- :mod:`patron.insights.kpis`: headline figures of the pipeline's results (the CLI renders them);
- :mod:`patron.insights.customer_view`: one customer's view (tier, segments, orders across
  channels), which the service's ``GET /customers/{key}`` renders;
- :mod:`patron.insights.definitions`: every KPI defined once (label, plain-words definition, unit,
  direction, engine computation); ``docs/metrics.md`` is generated from it;
- :mod:`patron.insights.dashboard`: the executive dashboard's numbers (KPI tiles, trends, CLV
  distribution, tier migration, cohort retention, forecast against actual) from the summary tables
  of :mod:`patron.transforms.summaries`, on a warehouse or a serving version's snapshot;
- :mod:`patron.insights.cohorts`: cohort tokens (an audience, ``column:value``, ``acquired:2024-Q1``, a
  condition in the audience language) as filters over the customers;
- :mod:`patron.insights.profile`: the profiler, cohorts side by side with tests
  (``from patron.insights.profile import profile``; ``profile(warehouse, ["value_tier:top_1",
  "vip_service"], period="2025-01..2025-06")`` returns a :class:`~patron.insights.profile.Profile`).

Nothing is imported here, so that importing one of them does not import the others' engines.

Interfaces render these; they do not compute them.
"""
