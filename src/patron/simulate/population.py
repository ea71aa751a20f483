"""Persons: latent purchase and spend parameters, tastes, demographics and contact details.

Every person draws, independently of everyone else:

* ``lam ~ Gamma(r, rate alpha)`` purchases per operational week and
  ``p_drop ~ Beta(a, b)``, the probability of dropping out after each repeat
  purchase (BG/NBD);
* ``nu ~ Gamma(q, rate gamma)``, the rate of the Gamma spend per order
  (Gamma-Gamma), so the person's mean order value is ``p_shape / nu`` EUR;
* a country, a store propensity, whether discount-prone, category and
  material tastes (materials lean to gold for high spenders), an engagement
  level correlated with ``lam`` through a Gaussian copula (so engagement
  predicts purchasing, as in real data) and a satisfaction level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special, stats

from patron.contract import CATEGORIES, MATERIALS
from patron.simulate.calendar import COUNTRIES, MARKETS
from patron.simulate.names import digits, draw_emails, draw_names, draw_postcodes, national_numbers, unique_emails
from patron.simulate.settings import RetailerSettings


@dataclass
class Persons:
    """Column arrays of the persons, index ``i`` is person ``i`` (``person_id`` P00000001 for 0)."""

    country: np.ndarray
    lam: np.ndarray
    p_drop: np.ndarray
    nu: np.ndarray
    store_propensity: np.ndarray
    discount_prone: np.ndarray
    category_cdf: np.ndarray
    material_cdf: np.ndarray
    engagement: np.ndarray
    satisfaction: np.ndarray
    female: np.ndarray
    birth_year: np.ndarray
    loyalty_member: np.ndarray
    consent: np.ndarray
    first_name: pa.Array
    last_name: pa.Array
    email: pa.Array
    phone_national: pa.Array
    postcode: pa.Array
    loyalty_id: pa.Array

    @property
    def size(self) -> int:
        return int(self.country.size)

    @property
    def person_id(self) -> pa.Array:
        return person_ids(np.arange(self.size))


def person_ids(index: np.ndarray) -> pa.Array:
    """String ids P00000001... of person indexes (0-based)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(index + 1), pa.string()), 8, "0")
    return pc.binary_join_element_wise("P", digits, "")


def _tastes(rng: np.random.Generator, n: int, k: int, concentration: float,
            tilt: np.ndarray | None) -> np.ndarray:
    """Cumulative preference vectors (rows sum to 1): Dirichlet draws, optionally tilted per person."""
    weights = rng.gamma(concentration, 1.0, size=(n, k))
    if tilt is not None:
        weights = weights * tilt
    cdf = np.cumsum(weights, axis=1)
    return cdf / cdf[:, -1:]


def _material_tilt(mean_spend: np.ndarray) -> np.ndarray:
    """Higher spenders lean to gold: weights (silver, gold, rose gold) by log mean order value."""
    z = np.clip(np.log(mean_spend / 100.0), -2.0, 2.0)
    return np.stack([np.exp(-0.8 * z), 0.35 * np.exp(1.2 * z), 0.6 * np.ones_like(z)], axis=1)


def _engagement(rng: np.random.Generator, lam: np.ndarray, s: RetailerSettings) -> np.ndarray:
    """Engagement in (0, 1): Beta(2, 5) margin, Gaussian copula with ``lam`` at the configured correlation."""
    u_lam = np.clip(stats.gamma.cdf(lam, s.r, scale=1.0 / s.alpha), 1e-12, 1 - 1e-12)
    rho = s.engagement_lambda_correlation
    z = rho * special.ndtri(u_lam) + np.sqrt(1.0 - rho**2) * rng.standard_normal(lam.size)
    return special.betaincinv(2.0, 5.0, special.ndtr(z))


def draw_persons(rng: np.random.Generator, s: RetailerSettings) -> Persons:
    """Draw ``s.customers`` persons with their latent parameters and contact details."""
    n = s.customers
    shares = np.array([MARKETS[c][2] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=shares / shares.sum())
    lam = rng.gamma(s.r, 1.0 / s.alpha, n)
    p_drop = rng.beta(s.a, s.b, n)
    nu = rng.gamma(s.q, 1.0 / s.gamma, n)
    store = rng.beta(2.0, 2.0 * (1.0 - s.store_share) / s.store_share, n)
    female = rng.random(n) < 0.8
    age = 18 + rng.gamma(4.0, 5.5, n)
    first, last = draw_names(rng, country, female)
    member = rng.random(n) < s.loyalty_member_share
    loyalty = digits(rng, n, 10, 1)
    loyalty = pc.if_else(pa.array(member), pc.binary_join_element_wise("L", loyalty, ""), None)
    return Persons(
        country=country,
        lam=lam,
        p_drop=p_drop,
        nu=nu,
        store_propensity=store,
        discount_prone=rng.random(n) < s.discount_prone_share,
        category_cdf=_tastes(rng, n, len(CATEGORIES), 0.6, None),
        material_cdf=_tastes(rng, n, len(MATERIALS), 0.8, _material_tilt(s.p_shape / nu)),
        engagement=_engagement(rng, lam, s),
        satisfaction=rng.standard_normal(n),
        female=female,
        birth_year=(int(s.end[:4]) - age).astype(np.int64),
        loyalty_member=member,
        consent=rng.random(n) < s.marketing_consent_rate,
        first_name=first,
        last_name=last,
        email=unique_emails(draw_emails(rng, first, last)),
        phone_national=national_numbers(rng, country),
        postcode=draw_postcodes(rng, country),
        loyalty_id=loyalty,
    )


def pick(cdf: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row: the first column whose cumulative weight exceeds ``u``."""
    c = cdf[rows]
    return np.minimum((c < u[:, None]).sum(axis=1), cdf.shape[1] - 1)
