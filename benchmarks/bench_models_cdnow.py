"""Fit BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma on CDNOW with patron and lifetimes, same run.

Run: ``.venv/bin/python benchmarks/bench_models_cdnow.py``. Prints the best of ``REPEATS``
wall-clock fits and the log-likelihood each library reaches (patron's formula for both).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np

from patron import datasets
from patron.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

REPEATS = 5


def best_time(fit: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    cdnow = datasets.load_cdnow()
    repeat = cdnow[cdnow["frequency"] > 0]
    f, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    cases = [
        ("BG/NBD", BetaGeo, lambda: BetaGeoFitter().fit(f, r, t), cdnow),
        ("Pareto/NBD", ParetoNBD, lambda: ParetoNBDFitter().fit(f, r, t), cdnow),
        ("MBG/NBD", ModifiedBetaGeo, lambda: ModifiedBetaGeoFitter().fit(f, r, t), cdnow),
        (
            "Gamma-Gamma",
            GammaGamma,
            lambda: GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]),
            repeat,
        ),
    ]
    print(f"{'model':<12} {'patron s':>9} {'lifetimes s':>12} {'patron LL':>12} {'lifetimes LL':>13}")
    for name, model_cls, lifetimes_fit, data in cases:
        ours_s, ours = best_time(lambda model_cls=model_cls, data=data: model_cls().fit(data))
        theirs_s, theirs = best_time(lifetimes_fit)
        params = dict(theirs.params_)
        if "v" in params:
            params["gamma"] = params.pop("v")
        at_theirs = model_cls().with_params(params)
        stats = {c: data[c].to_numpy() for c in model_cls.stat_columns}
        their_ll = float(np.sum(at_theirs._log_likelihood_rows(np.log(list(at_theirs.params_.values())), stats)))
        print(f"{name:<12} {ours_s:>9.3f} {theirs_s:>12.3f} {ours.log_likelihood_:>12.3f} {their_ll:>13.3f}")


if __name__ == "__main__":
    main()
