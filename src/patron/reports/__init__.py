"""Reports: charts and documents drawn from results the lower layers computed (data in, files out).

- :mod:`~patron.reports.figures`: matplotlib (Agg backend, imported on first use) and saving a figure;
- :mod:`~patron.reports.plotting`: the project's summary charts (``patron demo``);
- :mod:`~patron.reports.backtest_charts`: the charts that judge a backtest's purchase models;
- :mod:`~patron.reports.contract_docs`: the data-contract reference in ``docs/data-contract.md``.

matplotlib is imported lazily, inside the drawing functions, so that importing patron
never pulls in a plotting backend.
"""
