"""The purchase process: BG/NBD in operational time, mapped to each country's calendar.

Each person is acquired (first purchase) at an operational time drawn
uniformly over the window of their country, so acquisitions show the same
seasonal peaks as repeat purchases. After acquisition the person makes repeat
purchases as a Poisson process with rate ``lam`` per operational week and
drops out right after the ``J``-th repeat purchase, ``J ~ Geometric(p_drop)``
(Fader, Hardie & Lee 2005, assumptions (i)-(v)). Simulated without a loop:
the number of Poisson events in the person's remaining window is
``N ~ Poisson(lam * T)``, their times are ``N`` sorted uniforms, and the first
``min(N, J)`` of them are the observed repeat purchases. The person is alive
at the observation end when ``J > N``; otherwise they dropped out right after
their last purchase. Every order also draws its gross value in EUR,
``z ~ Gamma(p_shape, rate nu)`` (Gamma-Gamma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patron.simulate.calendar import COUNTRIES, SeasonalClock, local_to_utc_us, utc_to_local_days
from patron.simulate.population import Persons
from patron.simulate.settings import RetailerSettings

WEEK_DAYS = 7.0


@dataclass
class Orders:
    """One entry per order, sorted by ``ordered_at``; ``person`` indexes the persons."""

    person: np.ndarray
    seq: np.ndarray
    op_week: np.ndarray
    local_day: np.ndarray
    utc_us: np.ndarray
    spend_eur: np.ndarray


@dataclass
class PurchaseTruth:
    """Per person: acquisition, the operational-time window and the repeat purchases in it."""

    acquired_op_week: np.ndarray
    t_weeks: np.ndarray
    n_repeat: np.ndarray
    t_x_weeks: np.ndarray
    alive_at_end: np.ndarray
    dropout_us: np.ndarray
    acquired_us: np.ndarray


def window_us(s: RetailerSettings) -> tuple[int, int]:
    """Start and end of the observation window as UTC microseconds (end exclusive, at 00:00 UTC)."""
    start = np.datetime64(s.start, "us").astype(np.int64)
    end = np.datetime64(s.end, "us").astype(np.int64)
    return int(start), int(end)


def build_clocks(s: RetailerSettings) -> dict[str, SeasonalClock]:
    """The seasonal clock of every country, on whole years around the window."""
    y0, y1 = int(s.start[:4]) - 1, int(s.end[:4]) + 1
    return {c: SeasonalClock.build(c, y0, y1, s.season) for c in COUNTRIES}


def operational_bounds(s: RetailerSettings, clocks: dict[str, SeasonalClock]) -> np.ndarray:
    """Operational time (days) of the window start and end in each country, shape (countries, 2)."""
    start, end = window_us(s)
    out = np.empty((len(COUNTRIES), 2))
    for ci, c in enumerate(COUNTRIES):
        local = utc_to_local_days(np.array([start, end], dtype=np.int64), c)
        out[ci] = clocks[c].to_operational(local)
    return out


def _repeat_times(rng: np.random.Generator, persons: Persons, t0: np.ndarray, t_weeks: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Repeat purchases (person, operational week) and per person the count and dropout flag."""
    n = persons.size
    events = rng.poisson(persons.lam * t_weeks)
    j = rng.geometric(persons.p_drop)
    kept = np.minimum(events, j)
    owner = np.repeat(np.arange(n), events)
    u = rng.random(owner.size)
    order = np.lexsort((u, owner))  # by person, then by time within person
    owner, u = owner[order], u[order]
    starts = np.cumsum(events) - events
    rank = np.arange(owner.size) - starts[owner]
    keep = rank < kept[owner]
    owner, u = owner[keep], u[keep]
    times = t0[owner] + u * t_weeks[owner]
    return owner, times, kept, j <= events


def simulate_orders(rng: np.random.Generator, persons: Persons, s: RetailerSettings,
                    clocks: dict[str, SeasonalClock]) -> tuple[Orders, PurchaseTruth]:
    """All orders of all persons with their calendar times, plus the per-person truth."""
    bounds = operational_bounds(s, clocks) / WEEK_DAYS
    lo, hi = bounds[persons.country, 0], bounds[persons.country, 1]
    t0 = lo + rng.random(persons.size) * (hi - lo)
    t_weeks = hi - t0
    owner, times, kept, dropped = _repeat_times(rng, persons, t0, t_weeks)
    person = np.concatenate([np.arange(persons.size), owner])
    op_week = np.concatenate([t0, times])
    seq = np.concatenate([np.zeros(persons.size, np.int64), _seq_within(owner)])
    local_day, utc_us = _to_calendar(person, op_week, persons.country, clocks)
    order = np.lexsort((seq, person, utc_us))
    person, relative = person[order], op_week[order] - lo[person[order]]  # op week 0 = window start
    orders = Orders(person, seq[order], relative, local_day[order], utc_us[order],
                    rng.gamma(s.p_shape, 1.0 / persons.nu[person]))
    truth = _truth(persons.size, orders, t0 - lo, t_weeks, kept, dropped)
    return orders, truth


def _seq_within(owner: np.ndarray) -> np.ndarray:
    """1, 2, 3... within runs of equal ``owner`` (already grouped)."""
    if owner.size == 0:
        return owner.astype(np.int64)
    first = np.r_[True, owner[1:] != owner[:-1]]
    idx = np.arange(owner.size)
    return (idx - np.maximum.accumulate(np.where(first, idx, 0)) + 1).astype(np.int64)


def _to_calendar(person: np.ndarray, op_week: np.ndarray, country: np.ndarray,
                 clocks: dict[str, SeasonalClock]) -> tuple[np.ndarray, np.ndarray]:
    """Local fractional days and UTC microseconds of operational times, country by country."""
    local = np.empty(op_week.size)
    utc = np.empty(op_week.size, dtype=np.int64)
    order_country = country[person]
    for ci, c in enumerate(COUNTRIES):
        sel = np.flatnonzero(order_country == ci)
        if sel.size == 0:
            continue
        local[sel] = clocks[c].to_local(op_week[sel] * WEEK_DAYS)
        utc[sel] = local_to_utc_us(local[sel], c)
    return local, utc


def _truth(n: int, orders: Orders, t0: np.ndarray, t_weeks: np.ndarray, kept: np.ndarray,
           dropped: np.ndarray) -> PurchaseTruth:
    """Per-person facts: last purchase time (operational and UTC), dropout and acquisition times."""
    last_op = t0.copy()
    last_us = np.zeros(n, dtype=np.int64)
    acquired_us = np.zeros(n, dtype=np.int64)
    is_last = orders.seq == kept[orders.person]
    last_op[orders.person[is_last]] = orders.op_week[is_last]
    last_us[orders.person[is_last]] = orders.utc_us[is_last]
    first = orders.seq == 0
    acquired_us[orders.person[first]] = orders.utc_us[first]
    return PurchaseTruth(
        acquired_op_week=t0,
        t_weeks=t_weeks,
        n_repeat=kept.astype(np.int64),
        t_x_weeks=last_op - t0,
        alive_at_end=~dropped,
        dropout_us=np.where(dropped, last_us, -1),
        acquired_us=acquired_us,
    )
