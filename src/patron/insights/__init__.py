"""Insights: what patron tells about customers and runs, computed once for every interface to show as it is.

- :mod:`patron.insights.kpis`: headline figures of the pipeline's results (the CLI renders them);
- :mod:`patron.insights.customer_view`: one customer's view (tier, segments, orders across
  channels), which the service's ``GET /customers/{key}`` renders.

Interfaces render these; they do not compute them.
"""
