"""The estimator every BTYD model derives from: input, fit, uncertainty and the fitted state.

A model module supplies only its likelihood (per distinct row), the gradient of it
with respect to the log-parameters, starting values and predictions. This base class

* checks the input once, at the boundary, with errors naming the column and the rule
  (:mod:`patron.models.validation`);
* collapses the rows to the histogram of distinct sufficient statistics with counts,
  so a fit costs what the distinct rows cost, not what the customers cost
  (:mod:`patron.models.grouping`);
* maximises the weighted log-likelihood over log-parameters with L-BFGS-B from a
  few starts, keeping the best (:mod:`patron.models.optimise`);
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
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize

from patron.errors import ConvergenceError, DataContractError, NotFittedError
from patron.models._special import FloatArray, numeric_jacobian
from patron.models.grouping import ColumnCodes, group_rows
from patron.models.identification import Z95, FitWarning, caller_level, identify, notes_from_covariance
from patron.models.optimise import best_minimum, check_optimum, one_blas_thread, starting_points
from patron.models.validation import Stats, column, row_weights


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
        """Each distinct row's log-likelihood at the log-parameters (every model supplies this)."""
        raise NotImplementedError

    def _gradient_rows(self, log_params: FloatArray, stats: Stats) -> FloatArray | None:
        """Gradient of each row's log-likelihood w.r.t. the log-parameters, (rows, k); None: numeric."""
        return None

    def _initial_params(self, stats: Stats, weights: FloatArray) -> FloatArray:
        """Starting parameter values (not logs) of the first start; ones unless the model knows better."""
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
        w = row_weights(data, weights, n, type(self).__name__)
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
        with one_blas_thread():
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
        """Starting log-parameters: the model's initial values and ``n_starts - 1`` jittered copies."""
        return starting_points(self._initial_params(stats, w), self.n_starts)

    def _optimise(self, stats: Stats, w: FloatArray, starts: list[FloatArray] | None = None) -> optimize.OptimizeResult:
        """L-BFGS-B from each of ``starts`` (default ``_starts``), the best optimum checked."""
        best = best_minimum(self._objective, self._starts(stats, w) if starts is None else starts, (stats, w),
                            n_params=len(self.param_names), maxiter=self.maxiter, tol=self.tol)
        return self._check_optimum(best)

    def _check_optimum(self, best: optimize.OptimizeResult | None) -> optimize.OptimizeResult:
        """``best`` if it is finite and converged, else a ``ConvergenceError`` (a bound is no failure: ``_store``)."""
        return check_optimum(best, type(self).__name__)

    def _store(self, result: optimize.OptimizeResult, stats: Stats, w: FloatArray) -> None:
        """Keep the optimum as the fit: parameters, likelihood, AIC/BIC, uncertainty and fit warnings."""
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
        """Raise ``NotFittedError`` unless the model has parameters (fitted or from :meth:`with_params`)."""
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")

    def _log_params(self) -> FloatArray:
        """The fitted parameters' logarithms, in ``param_names`` order."""
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
        """``BetaGeo(r=0.2425, ...)`` when fitted, ``BetaGeo(not fitted)`` before."""
        if hasattr(self, "params_"):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({shown})"
        return f"{type(self).__name__}(not fitted)"
