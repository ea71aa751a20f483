"""What the data identify at the optimum: boundary estimates, flat directions, the covariance left.

A maximum-likelihood fit on real data often ends on the edge of the parameter space: in a
one-year log few customers have visibly dropped out, and BG/NBD's drop-out parameters run
to ``a -> 0`` or ``b -> inf`` (no drop-out), Pareto/NBD's to ``s, beta -> inf`` (one death
rate for all). The likelihood is then maximised at (or along a ridge towards) a limit; the
estimate is still the best fit of the data and its predictions are finite, but some
parameters, or combinations of them, are not pinned down. lifetimes reports such a fit as it
stands; patron reports it too, and says so:

* a parameter within 0.05 of the log-parameter bound is **at bound**;
* an eigen-direction of the Hessian of the negative log-likelihood (log-parameters, summed
  over customers) with curvature below ``max(1e-9 * largest, (1.96 / 18.4)**2)`` is **flat**:
  its 95% interval would be wider than the whole range ``e**±18.4`` a parameter may take.
  Negative curvature (a saddle, or rounding in a numeric Hessian) counts as flat. A free
  parameter with a loading above ``_LOADING`` on a flat direction is **not identified**.

The covariance of the log-parameters is the pseudo-inverse of the Hessian over the
identified directions (Hessian restricted to the parameters not at bound, flat
eigen-directions left out), with the rows and columns of the at-bound and not identified
parameters set to 0: their standard errors are reported as NaN, and the uncertainty of
predictions (CLV intervals) counts the identified directions only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from patron.models._special import FloatArray

# Log-parameter bounds of the optimiser: parameters between ~1e-8 and ~1e8.
LOG_BOUND = 18.4
Z95 = 1.959963984540054
# Within this distance of LOG_BOUND (log scale) a parameter counts as at its bound.
_AT_BOUND = 0.05
# Smallest Hessian eigenvalue, relative to the largest, still taken as curvature (rounding).
_FLAT = 1e-9
# Smallest curvature (log scale, summed) that identifies a direction: a log-scale standard
# error of LOG_BOUND / Z95, a 95% interval as wide as the parameter's whole range.
_MIN_CURVATURE = (Z95 / LOG_BOUND) ** 2
# A parameter whose unit-vector loading on a flat direction exceeds this moves along it.
_LOADING = 0.01

AT_BOUND = "at bound"
NOT_IDENTIFIED = "not identified"


class FitWarning(UserWarning):
    """A fit was returned, but the data do not pin down all of its parameters.

    Raised as a Python warning by ``fit`` (and recorded on the model as ``fit_warnings_``)
    for a boundary estimate (a parameter at its limit) or a flat direction of the
    likelihood at the optimum. The estimate is still the maximum of the likelihood and its
    predictions are usable; the affected parameters have no standard error.
    """


@dataclass(frozen=True)
class Identification:
    """The outcome of :func:`identify`.

    Attributes
    ----------
    covariance
        Covariance of the log-parameters over the identified directions (k x k, finite;
        0 in the rows and columns of parameters at bound or not identified).
    notes
        Per parameter: ``""``, ``"at bound"`` or ``"not identified"``.
    warnings
        Plain-language messages, one per problem (empty when every parameter is identified).
    """

    covariance: FloatArray
    notes: dict[str, str]
    warnings: list[str]


def at_bound(log_params: FloatArray) -> np.ndarray:
    """Which log-parameters lie within ``_AT_BOUND`` of (or beyond) the optimiser's bound."""
    return np.abs(np.asarray(log_params, dtype=float)) > LOG_BOUND - _AT_BOUND


def notes_from_covariance(names: tuple[str, ...], log_params: FloatArray, covariance: FloatArray) -> dict[str, str]:
    """The per-parameter notes a covariance from :func:`identify` implies (0 variance: unidentified)."""
    bound = at_bound(log_params)
    variance = np.diag(covariance)
    return {
        p: (AT_BOUND if bound[i] else NOT_IDENTIFIED) if not variance[i] > 0 else ""
        for i, p in enumerate(names)
    }


def identify(
    model: str,
    names: tuple[str, ...],
    log_params: FloatArray,
    hessian: FloatArray,
) -> Identification:
    """Split the parameters into identified, at bound and not identified; see the module docstring.

    Parameters
    ----------
    model
        The model's name, for the messages.
    names
        Parameter names, in the order of ``log_params``.
    log_params
        The optimum (log-parameters).
    hessian
        Hessian of the (penalised) negative log-likelihood at the optimum, summed over
        customers, log scale.
    """
    k = len(names)
    log_params = np.asarray(log_params, dtype=float)
    hessian = np.asarray(hessian, dtype=float)
    bound = at_bound(log_params)
    broken = ~np.all(np.isfinite(hessian), axis=0) | ~np.all(np.isfinite(hessian), axis=1)
    free = np.flatnonzero(~bound & ~broken)
    messages = []
    for i in np.flatnonzero(bound):
        side = "upper" if log_params[i] > 0 else "lower"
        messages.append(
            f"{model}: {names[i]} = {np.exp(log_params[i]):.3g} ran to its {side} limit (a boundary estimate); "
            "it has no standard error"
        )
    identified = np.zeros(k, dtype=bool)
    covariance = np.zeros((k, k))
    if free.size:
        block = hessian[np.ix_(free, free)]
        values, vectors = np.linalg.eigh((block + block.T) / 2.0)
        flat = values <= max(_FLAT * max(values.max(), 1.0), _MIN_CURVATURE)
        loose = np.any(np.abs(vectors[:, flat]) > _LOADING, axis=1)
        keep = vectors[:, ~flat]
        inner = (keep / values[~flat]) @ keep.T
        good = free[~loose]
        covariance[np.ix_(good, good)] = inner[np.ix_(~loose, ~loose)]
        identified[good] = True
        if flat.any():
            lost = [names[i] for i in free[loose]]
            where = (
                f"along {_direction(names, free, vectors[:, flat][:, 0])}" if flat.sum() == 1
                else f"in {flat.sum()} directions of ({', '.join(f'log {p}' for p in lost)})"
            )
            messages.append(
                f"{model}: the likelihood is flat at the optimum {where}; {', '.join(lost)} not identified: "
                "the estimate is one point of a ridge of equally good fits and has no standard error "
                "(penalizer > 0 picks one)"
            )
    if broken.any():
        messages.append(
            f"{model}: the curvature of the likelihood is not finite in {[names[i] for i in np.flatnonzero(broken)]}; "
            "not identified"
        )
    notes = {p: "" if identified[i] else AT_BOUND if bound[i] else NOT_IDENTIFIED for i, p in enumerate(names)}
    return Identification(covariance=covariance, notes=notes, warnings=messages)


def caller_level() -> int:
    """The ``stacklevel`` that points a warning issued here-below at the first caller outside ``patron.models``."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("patron.models"):
        frame, level = frame.f_back, level + 1
    return level


def _direction(names: tuple[str, ...], free: np.ndarray, vector: FloatArray) -> str:
    """A flat eigen-direction in words: its main log-parameter loadings, e.g. ``(+0.71 log a, +0.71 log b)``."""
    order = np.argsort(-np.abs(vector))
    parts = [f"{vector[j]:+.2f} log {names[free[j]]}" for j in order if abs(vector[j]) > 0.1]
    return "(" + ", ".join(parts) + ")"
