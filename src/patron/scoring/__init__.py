"""Fit the value models, store them, and score every customer on profit CLV.

One module per job; import each name from its module:

- :mod:`~patron.scoring.fit`: :func:`~patron.scoring.fit.fit_value_models`, the purchase,
  spend and margin models fitted on engine aggregates of ``rfm``;
- :mod:`~patron.scoring.model_store`: the fitted models (``FittedValueModels``) and their
  table ``models``; the purchase models by name;
- :mod:`~patron.scoring.predictions`: the models' predictions on the small per-row and
  per-frequency tables that scoring joins to ``rfm`` (batch and service alike);
- :mod:`~patron.scoring.intervals`: the CLV interval, by the delta method on the log scale;
- :mod:`~patron.scoring.batch`: :func:`~patron.scoring.batch.score_customers`, the ``scores`` table.
"""
