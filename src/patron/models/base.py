"""The machinery every BTYD model shares: validation, histogram fitting, uncertainty.

A model module supplies only its likelihood (per distinct row), the gradient of it
with respect to the log-parameters, starting values and predictions. This base class

* checks the input once, at the boundary, with errors naming the column and the rule;
* collapses the rows to the histogram of distinct sufficient statistics with counts,
  so a fit costs what the distinct rows cost, not what the customers cost;
* maximises the weighted log-likelihood over log-parameters with L-BFGS-B from a
  few starts, keeping the best;
* derives standard errors and 95% intervals from the Hessian (central differences
  of the exact gradient) and reports AIC, BIC and a ``summary()`` table;
* returns a boundary estimate (a parameter at its limit, a flat direction of the
  likelihood) as a fit with a :class:`~patron.models.identification.FitWarning`, recorded
  in ``fit_warnings_`` and the summary's ``note`` column
  (:mod:`patron.models.identification`); only a fit with no finite likelihood, or data
  that cannot identify the model at all (no repeat buyers), is a ``ConvergenceError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize
from threadpoolctl import ThreadpoolController

from patron.errors import ConvergenceError, DataContractError, NotFittedError
from patron.models._special import FloatArray, numeric_jacobian
from patron.models.identification import (
    LOG_BOUND,
    Z95,
    FitWarning,
    at_bound,
    caller_level,
    identify,
    notes_from_covariance,
)

_WEIGHT_COLUMNS = ("weights", "n_customers")

Stats = dict[str, FloatArray]


def column(data: Any, name: str, model: str) -> FloatArray:
    """One column of ``data`` as a float array, or a ``DataContractError`` naming it."""
    try:
        values = data[name]
    except (KeyError, IndexError, TypeError):
        raise DataContractError(f"{model}: column '{name}' is missing") from None
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1:
        raise DataContractError(f"{model}: column '{name}' must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise DataContractError(f"{model}: column '{name}' holds missing or infinite values")
    return array


def require(condition: FloatArray | bool, model: str, name: str, rule: str) -> None:
    """Raise a ``DataContractError`` naming the column and the rule unless ``condition`` holds."""
    if not np.all(condition):
        raise DataContractError(f"{model}: column '{name}' breaks the rule: {rule}")


def horizon(t: Any, name: str = "t") -> FloatArray:
    """A prediction horizon (time or periods ahead) as floats, checked finite and >= 0."""
    t = np.asarray(t, dtype=float)
    if np.any(~np.isfinite(t) | (t < 0)):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def check_frequency(stats: Stats, model: str) -> None:
    """Frequency (repeat purchases) is a non-negative integer."""
    x = stats["frequency"]
    require(x >= 0, model, "frequency", "frequency >= 0")
    require(x == np.round(x), model, "frequency", "frequency is a whole number")


class BaseModel:
    """Base of patron's probabilistic customer-base models (scikit-learn conventions).

    Parameters
    ----------
    penalizer
        L2 penalty on the log-parameters, ``penalizer * sum(log(theta)**2)``, added to
        the mean negative log-likelihood (a log-normal prior centred on 1); 0 gives the
        maximum-likelihood estimate. A small value (0.001-0.1) keeps ill-identified fits
        away from the bounds in both directions. Unlike lifetimes' ``penalizer_coef``
        (on ``theta**2``) it never pulls a parameter towards 0.
    tol
        Convergence tolerance handed to L-BFGS-B (``ftol`` and ``gtol``).
    maxiter
        Iteration limit per start.
    n_starts
        Number of starting points tried; the best optimum is kept.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    stat_columns: ClassVar[tuple[str, ...]] = ()
    min_distinct_rows: ClassVar[int] = 4

    def __init__(self, *, penalizer: float = 0.0, tol: float = 1e-10, maxiter: int = 2000, n_starts: int = 3) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.maxiter = maxiter
        self.n_starts = n_starts

    # ---- hooks for the model modules -------------------------------------------------
    def _validate(self, stats: Stats) -> None:
        """Check the model's rules on its sufficient statistics (column-named errors)."""

    def _check_identifiable(self, stats: Stats, weights: FloatArray) -> None:
        """Raise ``ConvergenceError`` when the data cannot identify the model."""

    def _log_likelihood_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray:
        raise NotImplementedError

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray | None:
        """Gradient of each row's log-likelihood w.r.t. the log-parameters, (rows, k); None: numeric."""
        return None

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        return np.ones(len(self.param_names))

    # ---- input --------------------------------------------------------------------------
    def _stats(self, data: Any) -> Stats:
        """Read and validate the sufficient-statistic columns of ``data``."""
        name = type(self).__name__
        stats = {col: column(data, col, name) for col in self.stat_columns}
        if len({len(v) for v in stats.values()}) > 1:
            raise DataContractError(f"{name}: columns {list(self.stat_columns)} differ in length")
        self._validate(stats)
        return stats

    def _histogram(self, data: Any, weights: Any) -> tuple[Stats, FloatArray]:
        """Validated statistics collapsed to distinct rows with summed weights."""
        stats, w, _ = self._grouped_histogram(data, weights)
        return stats, w

    def _grouped_histogram(self, data: Any, weights: Any) -> tuple[Stats, FloatArray, ColumnCodes]:
        """The histogram and, per column, its distinct values and each histogram row's code into them.

        Rows are grouped through integer codes (``group_rows``), tens of milliseconds on a
        million rows where ``np.unique(axis=0)`` on the float table takes about a second;
        input that is already distinct (a histogram) keeps its rows and order. Rows whose
        weights sum to 0 are dropped.
        """
        stats = self._stats(data)
        n = len(next(iter(stats.values())))
        w = self._weights(data, weights, n)
        groups = group_rows([stats[c] for c in self.stat_columns])
        rows: npt.NDArray[np.intp] | None = None
        if groups.first is None:
            if not np.all(w > 0):
                rows = np.flatnonzero(w > 0)
                w = w[rows]
        else:
            w = np.bincount(groups.inverse, weights=w, minlength=len(groups.first))
            rows = groups.first[w > 0]
            w = w[w > 0]
        if rows is not None:
            stats = {c: stats[c][rows] for c in self.stat_columns}
            groups = groups._replace(codes=[code[rows] for code in groups.codes])
        return stats, w, (groups.codes, groups.values)

    def _weights(self, data: Any, weights: Any, n: int) -> FloatArray:
        name = type(self).__name__
        if weights is None:
            present = [c for c in _WEIGHT_COLUMNS if _has_column(data, c)]
            if not present:
                return np.ones(n)
            weights, label = column(data, present[0], name), present[0]
        else:
            weights, label = np.atleast_1d(np.asarray(weights, dtype=float)), "weights"
        require(len(weights) == n, name, label, "one weight per row")
        require(np.isfinite(weights) & (weights >= 0), name, label, "weights are finite and >= 0")
        require(weights.sum() > 0, name, label, "weights sum to more than 0")
        return weights

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, data: Any, *, weights: Any = None) -> Self:
        """Fit by weighted maximum likelihood on the histogram of distinct rows.

        Parameters
        ----------
        data
            A DataFrame (or mapping of arrays) with the model's columns
            (``stat_columns``), one row per customer or per distinct row; an optional
            ``weights`` or ``n_customers`` column gives each row's count.
        weights
            Row counts, overriding any weight column.

        Returns
        -------
        self

        Warns
        -----
        FitWarning
            When a parameter ran to its limit or the likelihood is flat in some direction
            at the optimum: the fit is returned, with the messages in ``fit_warnings_`` and
            NaN standard errors for the parameters the data do not pin down.
        """
        stats, w = self._histogram(data, weights)
        name = type(self).__name__
        if len(w) < self.min_distinct_rows:
            raise ConvergenceError(
                f"{name}: {len(w)} distinct rows cannot identify {len(self.param_names)} parameters "
                f"(need at least {self.min_distinct_rows})"
            )
        self._check_identifiable(stats, w)
        # the fit's BLAS calls are dot products and 4x4 algebra: threads only add start-up cost
        with _blas_controller().limit(limits=1, user_api="blas"):
            result = self._optimise(stats, w)
            self._store(result, stats, w)
        if self.fit_warnings_:
            warnings.warn("\n".join(self.fit_warnings_), FitWarning, stacklevel=caller_level())
        return self

    def _objective(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> tuple[float, FloatArray]:
        """Mean weighted negative log-likelihood plus penalty, and its gradient."""
        total = w.sum()
        with np.errstate(all="ignore"):
            ll, grad_ll = self._log_likelihood_and_gradient(log_params, stats, w)
        value = -ll / total + self.penalizer * np.sum(log_params**2)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        grad = grad_ll / -total + 2.0 * self.penalizer * log_params
        if not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(log_params)
        return float(value), grad

    def _log_likelihood_and_gradient(
        self, log_params: FloatArray, stats: Stats, w: FloatArray
    ) -> tuple[float, FloatArray]:
        """Weighted log-likelihood (no penalty) and its gradient in the log-parameters.

        The default sums the per-row hooks; a model may override it with a faster route to
        the same two numbers (the gradient is skipped when the likelihood is not finite).
        """
        ll = float(np.dot(w, self._log_likelihood_rows(log_params, stats)))
        if not np.isfinite(ll):
            return ll, np.zeros_like(log_params)
        return ll, self._total_gradient(log_params, stats, w)

    def _log_likelihood_hessian(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> FloatArray | None:
        """Hessian of the weighted log-likelihood in the log-parameters where the model has one; None: numeric."""
        return None

    def _total_gradient(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> FloatArray:
        """Gradient of the weighted log-likelihood (no penalty), exact where the model gives one."""
        with np.errstate(all="ignore"):
            rows = self._gradient_rows(log_params, stats)
        if rows is not None:
            return w @ rows

        def total(x: FloatArray) -> FloatArray:
            with np.errstate(all="ignore"):
                return np.atleast_1d(np.dot(w, self._log_likelihood_rows(x, stats)))

        return numeric_jacobian(total, log_params, step=1e-6).ravel()

    def _starts(self, stats: Stats, w: FloatArray) -> list[FloatArray]:
        base = np.log(np.clip(self._initial_params(stats, w), 1e-6, 1e6))
        rng = np.random.default_rng(0)  # fixed: the same data always give the same fit
        jitter = [base + rng.normal(0.0, 1.0, base.size) for _ in range(max(self.n_starts - 1, 0))]
        return [base, *jitter]

    def _optimise(self, stats: Stats, w: FloatArray, starts: list[FloatArray] | None = None) -> optimize.OptimizeResult:
        """L-BFGS-B from each of ``starts`` (default ``_starts``), the best optimum checked."""
        bounds = [(-LOG_BOUND, LOG_BOUND)] * len(self.param_names)
        options = {"maxiter": self.maxiter, "ftol": self.tol, "gtol": self.tol * 1e-2, "maxcor": 30}
        best = None
        for start in self._starts(stats, w) if starts is None else starts:
            res = optimize.minimize(
                self._objective,
                start,
                args=(stats, w),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options=options,
            )
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        return self._check_optimum(best)

    def _check_optimum(self, best: optimize.OptimizeResult | None) -> optimize.OptimizeResult:
        """``best`` if it is finite and converged; else a ``ConvergenceError``.

        A parameter at its bound is a boundary estimate, not a failure: its gradient (pointing
        out of the box) is left out of the convergence check, and ``_store`` reports it.
        """
        name = type(self).__name__
        if best is None:
            raise ConvergenceError(f"{name}: the likelihood is not finite at any starting point")
        inside = ~at_bound(best.x)
        grad_norm = float(np.max(np.abs(best.jac[inside]), initial=0.0))
        if not best.success and grad_norm > 1e-4:
            raise ConvergenceError(f"{name}: optimisation did not converge ({best.message}); |grad| {grad_norm:.2e}")
        return best

    def _store(self, result: optimize.OptimizeResult, stats: Stats, w: FloatArray) -> None:
        log_params = result.x
        n_obs = float(w.sum())
        with np.errstate(all="ignore"):
            ll = self._log_likelihood_and_gradient(log_params, stats, w)[0]
        k = len(self.param_names)
        name = type(self).__name__
        if not np.isfinite(ll):
            raise ConvergenceError(f"{name}: the log-likelihood is not finite at the optimum")
        found = identify(name, self.param_names, log_params, self._hessian(log_params, stats, w))
        self.params_ = dict(zip(self.param_names, np.exp(log_params).tolist(), strict=True))
        self.log_likelihood_ = ll
        self.n_observations_ = n_obs
        self.n_distinct_rows_ = len(w)
        self.aic_ = 2.0 * k - 2.0 * ll
        self.bic_ = k * np.log(n_obs) - 2.0 * ll
        self._set_covariance(found.covariance)
        self.n_iterations_ = int(result.nit)
        meanings = self._limit_meaning() if found.warnings else []
        self.fit_warnings_ = [*found.warnings, *([f"{name}: in words, {'; '.join(meanings)}"] if meanings else [])]

    def _limit_meaning(self) -> list[str]:
        """What the fitted parameters' limits mean for customers, in words (``fit_warnings_``); none by default."""
        return []

    def _set_covariance(self, cov: FloatArray) -> None:
        """Attach the log-parameter covariance and the standard errors and intervals it implies.

        A parameter with no variance (at bound or not identified, see
        :mod:`patron.models.identification`) gets NaN for its error and interval.
        """
        self.log_params_covariance_ = cov
        variance = np.diag(cov)
        se_log = np.where(variance > 0, np.sqrt(np.abs(variance)), np.nan)
        values = np.array([self.params_[p] for p in self.param_names])
        self.standard_errors_ = dict(zip(self.param_names, (values * se_log).tolist(), strict=True))
        self.confidence_intervals_ = pd.DataFrame(
            {"lower_95": values * np.exp(-Z95 * se_log), "upper_95": values * np.exp(Z95 * se_log)},
            index=pd.Index(self.param_names, name="parameter"),
        )
        self.parameter_notes_ = notes_from_covariance(self.param_names, np.log(values), cov)

    def _hessian(self, log_params: FloatArray, stats: Stats, w: FloatArray) -> FloatArray:
        """Hessian of the penalised negative log-likelihood (summed, log scale).

        The model's exact Hessian where it has one, else central differences of the gradient.
        """
        total = w.sum()
        exact = self._log_likelihood_hessian(log_params, stats, w)
        if exact is not None:
            return -exact + 2.0 * self.penalizer * total * np.eye(len(log_params))

        def gradient(x: FloatArray) -> FloatArray:
            return self._objective(x, stats, w)[1] * total

        hessian = numeric_jacobian(gradient, log_params, step=1e-5)
        return (hessian + hessian.T) / 2.0

    # ---- fitted state -------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")

    def _log_params(self) -> FloatArray:
        self._check_fitted()
        return np.log(np.array([self.params_[p] for p in self.param_names]))

    def summary(self) -> pd.DataFrame:
        """Estimates, standard errors, 95% intervals (log-normal, so always positive) and a note.

        ``note`` is ``"at bound"`` for a parameter that ran to its limit, ``"not identified"``
        for one on a flat direction of the likelihood (both with NaN errors and bounds), else
        empty; the fit's warnings are in ``attrs["fit_warnings"]``. A model built by
        :meth:`with_params` without a covariance has no uncertainty: its errors and bounds are NaN.
        """
        self._check_fitted()
        index = pd.Index(self.param_names, name="parameter")
        table = pd.DataFrame(
            {"estimate": self.params_, "std_error": getattr(self, "standard_errors_", {})}, index=index
        )
        intervals = getattr(self, "confidence_intervals_", pd.DataFrame(columns=["lower_95", "upper_95"], index=index))
        table = table.join(intervals.astype(float))
        notes = getattr(self, "parameter_notes_", {})
        table["note"] = [notes.get(p, "") for p in self.param_names]
        table.attrs["fit_warnings"] = list(getattr(self, "fit_warnings_", []))
        return table

    def with_params(self, params: Mapping[str, float], *, covariance: Any = None) -> Self:
        """A fitted copy of this model with the given parameters.

        Used to evaluate predictions at published or sampled parameter values, and to
        rebuild a stored fit. Without ``covariance`` no uncertainty is attached; with it
        (the covariance of the log-parameters, ``log_params_covariance_`` of a fit, in
        ``param_names`` order) the copy has the fit's standard errors, intervals and
        :meth:`sample_params`.
        """
        missing = [p for p in self.param_names if p not in params]
        if missing:
            raise ValueError(f"{type(self).__name__}: parameters {missing} are missing")
        values = {p: float(params[p]) for p in self.param_names}
        if not all(np.isfinite(v) and v > 0 for v in values.values()):
            raise ValueError(f"{type(self).__name__}: parameters must be finite and positive")
        model = type(self)(**self.get_params())
        model.params_ = values
        if covariance is not None:
            k = len(self.param_names)
            covariance = np.asarray(covariance, dtype=float)
            if covariance.shape != (k, k) or not np.all(np.isfinite(covariance)):
                raise ValueError(f"{type(self).__name__}: the covariance must be a finite {k}x{k} matrix")
            model._set_covariance(covariance)
        return model

    def sample_params(self, n: int, *, random_state: int | np.random.Generator | None = None) -> list[dict[str, float]]:
        """Draw parameter sets from the asymptotic normal of the log-parameters (inverse Hessian)."""
        centre = self._log_params()
        cov = getattr(self, "log_params_covariance_", None)
        if cov is None or not np.all(np.isfinite(cov)):
            raise ConvergenceError(f"{type(self).__name__}: no finite parameter covariance to sample from")
        rng = np.random.default_rng(random_state)
        draws = rng.multivariate_normal(centre, cov, size=n, method="eigh")
        return [dict(zip(self.param_names, np.exp(d).tolist(), strict=True)) for d in draws]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        return {
            "penalizer": self.penalizer,
            "tol": self.tol,
            "maxiter": self.maxiter,
            "n_starts": self.n_starts,
        }

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({shown})"
        return f"{type(self).__name__}(not fitted)"


class RowGroups(NamedTuple):
    """Equal rows of columns (``group_rows``): ``codes[i]``, each row's position in ``values[i]``, the sorted
    distinct values of column i; ``inverse``, each row's group, ``first``, each group's first row (None: distinct)."""

    codes: list[npt.NDArray[np.intp]]
    values: list[FloatArray]
    inverse: npt.NDArray[np.intp] | None
    first: npt.NDArray[np.intp] | None


# Per column: the histogram rows' codes and the distinct values they index.
ColumnCodes = tuple[list[npt.NDArray[np.intp]], list[FloatArray]]


def group_rows(columns: list[FloatArray]) -> RowGroups:
    """Group the equal rows of float columns through per-column integer codes.

    Each column is coded by ``_sorted_codes`` (``-0.0`` equals ``0.0``); the codes are combined
    into one int64 key when their product fits (else the code table is grouped row-wise),
    and groups are numbered in sorted key order. The common case of input that is already
    distinct costs one sort of the key.
    """
    codes, values = [], []
    for column in columns:
        code, distinct = _sorted_codes(column)
        codes.append(code)
        values.append(distinct)
    sizes = [max(len(v), 1) for v in values]
    if float(np.prod(np.array(sizes, dtype=float))) < 2.0**62:
        key = codes[0].astype(np.int64)
        for code, size in zip(codes[1:], sizes[1:], strict=True):
            key = key * size + code
        ordered = np.sort(key)
        if not np.any(ordered[1:] == ordered[:-1]):
            return RowGroups(codes, values, None, None)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(np.column_stack(codes), axis=0, return_index=True, return_inverse=True)
    return RowGroups(codes, values, inverse.ravel().astype(np.intp), first.astype(np.intp))


def _sorted_codes(column: FloatArray) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Each value's position among the column's sorted distinct values, and those values.

    Hashing (``pandas.factorize``, its table sized for a few distinct values, grown as needed) is several
    times faster than the sort inside ``np.unique``; only the distinct values are sorted.
    """
    code, distinct = pd.factorize(column + 0.0, size_hint=1024)  # + 0.0 turns -0.0 into 0.0
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return np.take(rank, code), np.asarray(distinct, dtype=float)[order]


@cache
def _blas_controller() -> ThreadpoolController:
    """One scan of the loaded thread pools per process (``threadpool_limits`` rescans on every call)."""
    return ThreadpoolController()


def _has_column(data: Any, name: str) -> bool:
    try:
        return name in data
    except TypeError:
        return False


def check_recency_frequency_age(stats: Stats, model: str, *, age: str = "T") -> None:
    """Rules shared by the continuous-time models: ``0 <= recency <= T``, integer frequency."""
    check_frequency(stats, model)
    x, t_x, big_t = stats["frequency"], stats["recency"], stats[age]
    require(t_x >= 0, model, "recency", "recency >= 0")
    require(big_t >= 0, model, age, f"{age} >= 0")
    require(t_x <= big_t, model, "recency", f"recency <= {age}")
    require((x > 0) | (t_x == 0), model, "recency", "recency == 0 where frequency == 0")


def check_repeat_buyers(stats: Stats, weights: FloatArray, model: str) -> None:
    """A purchase-rate model needs some repeat buyers and some non-buyers' exposure."""
    repeat = weights[stats["frequency"] > 0].sum()
    if repeat == 0:
        raise ConvergenceError(f"{model}: no repeat buyers (frequency is 0 everywhere); the model is not identified")
