"""Boundary estimates on real data: patron returns the fit lifetimes returns, with a FitWarning.

The case: CDNOW's January 1997 cohort (7,846 customers of the master log, ``../shared``)
calibrated on its first month only (to 1997-02-01, at most 4.4 weeks). In so short a
window nobody has visibly dropped out and BG/NBD's drop-out parameters run off along a
ridge (``a -> 0``, ``a / (a+b) -> 0``): the model is the NBD, with ``r`` and ``alpha`` well
identified and ``a``, ``b`` not. lifetimes 0.11.3 fits it and reports r 0.49968,
alpha 8.5897 with NaN errors for a and b; patron used to refuse it ("flat in some
direction"). The figures on this data (patron / lifetimes):

=============  ==================  ==================
BG/NBD         patron              lifetimes
=============  ==================  ==================
r (s.e.)       0.499681 (0.06069)  0.499682 (0.06069)
alpha (s.e.)   8.58968 (1.0933)    8.58968 (1.0934)
log-lik.       -3693.52829         -3693.52829
=============  ==================  ==================

(a and b differ: any point of the ridge is as good; both libraries say so with NaN errors.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

from patron.models import BetaGeo, FitWarning, ModifiedBetaGeo

MASTER = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
NAMES = ("r", "alpha", "a", "b")
# Agreement with lifetimes on the identified parameters (observed: a few 1e-6) and their errors (1e-4).
ESTIMATE_RTOL = 1e-4
ERROR_RTOL = 1e-3

pytestmark = pytest.mark.skipif(not MASTER.exists(), reason="../shared/data/cdnow/CDNOW_master.txt missing")


@pytest.fixture(scope="module")
def first_month() -> pd.DataFrame:
    """The January 1997 cohort's RFM histogram (weeks) at 1997-02-01; same-day purchases merged."""
    log = pd.read_csv(MASTER, sep=r"\s+", header=0, names=["customer", "date", "cds", "value"], dtype={"date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    end = pd.Timestamp("1997-02-01")
    first = log.groupby("customer")["date"].min()
    cohort = first.index[first < pd.Timestamp("1997-02-01")]
    days = log[log["customer"].isin(cohort) & (log["date"] <= end)].drop_duplicates(["customer", "date"])
    per = days.groupby("customer")["date"].agg(["min", "max", "count"])
    rfm = pd.DataFrame({
        "frequency": (per["count"] - 1).astype(float),
        "recency": (per["max"] - per["min"]).dt.days / 7.0,
        "T": (end - per["min"]).dt.days / 7.0,
    })
    histogram = rfm.groupby(list(rfm.columns)).size().rename("weights").reset_index()
    assert histogram["weights"].sum() == 7846
    return histogram


def _lifetimes_log_likelihood(fitter: type, params: dict[str, float], data: pd.DataFrame) -> float:
    """lifetimes' own likelihood (its mean per customer, times the customers) at ``params``."""
    weights = data["weights"].to_numpy(dtype=float)
    mean = fitter._negative_log_likelihood(
        np.log([params[k] for k in NAMES]), data["frequency"].to_numpy(), data["recency"].to_numpy(),
        data["T"].to_numpy(), weights, 0.0,
    )
    return -mean * weights.sum()


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")  # lifetimes' NaN errors
@pytest.mark.parametrize(("model", "fitter"), [(BetaGeo, BetaGeoFitter), (ModifiedBetaGeo, ModifiedBetaGeoFitter)])
def test_a_ridge_to_no_drop_out_fits_as_in_lifetimes(first_month: pd.DataFrame, model: type, fitter: type) -> None:
    with pytest.warns(FitWarning, match=r"a, b not identified"):
        ours = model().fit(first_month)
    theirs = fitter().fit(first_month["frequency"], first_month["recency"], first_month["T"],
                          weights=first_month["weights"])
    their_params = theirs.params_.to_dict()

    # the same likelihood, and at least as high a maximum
    own = _lifetimes_log_likelihood(fitter, ours.params_, first_month)
    assert ours.log_likelihood_ == pytest.approx(own, rel=1e-9)
    assert ours.log_likelihood_ >= _lifetimes_log_likelihood(fitter, their_params, first_month) - 1e-6 * abs(own)

    # the identified parameters and their errors agree; a and b are reported as not identified
    table = ours.summary()
    for name in ("r", "alpha"):
        assert ours.params_[name] == pytest.approx(their_params[name], rel=ESTIMATE_RTOL)
        assert table.loc[name, "std_error"] == pytest.approx(theirs.summary.loc[name, "se(coef)"], rel=ERROR_RTOL)
        assert table.loc[name, "note"] == ""
    assert list(table.loc[["a", "b"], "note"]) == ["not identified"] * 2
    assert table.loc[["a", "b"], "std_error"].isna().all() and theirs.summary.loc[["a", "b"], "se(coef)"].isna().all()

    # both say nobody drops out; the predictions are finite and the NBD's, as lifetimes'
    mean_dropout = ours.params_["a"] / (ours.params_["a"] + ours.params_["b"])
    assert mean_dropout < 1e-3 and their_params["a"] / (their_params["a"] + their_params["b"]) < 1e-3
    assert any("almost nobody drops out" in line for line in ours.fit_warnings_)
    f, r, t = first_month["frequency"], first_month["recency"], first_month["T"]
    predicted = ours.expected_purchases(first_month, t=39.0)
    assert np.all(np.isfinite(predicted)) and np.all(np.isfinite(ours.p_alive(first_month)))
    np.testing.assert_allclose(predicted, theirs.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, t),
                               rtol=1e-3)
    nbd = (ours.params_["r"] + f) / (ours.params_["alpha"] + t) * 39.0  # no drop-out: Gamma-Poisson posterior mean
    np.testing.assert_allclose(predicted, nbd, rtol=1e-3)


def test_a_penalised_fit_of_the_same_data_is_clean(first_month: pd.DataFrame) -> None:
    """penalizer > 0 picks one point of the ridge: no warning, every error finite."""
    penalised = BetaGeo(penalizer=0.01).fit(first_month)
    assert penalised.fit_warnings_ == []
    assert np.all(np.isfinite(list(penalised.standard_errors_.values())))
