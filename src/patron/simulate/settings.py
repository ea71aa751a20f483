"""Settings of the synthetic retailer: every rate and population parameter in one dataclass.

The defaults give a realistic five-year history: about 37 % of persons buy
again and a person places about 2.3 orders on average (persons are acquired
uniformly in operational time over the window), a mean order value near
100 EUR, and a few engagement events per person per year.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from patron.simulate.calendar import SeasonShape


def _returns() -> dict[str, float]:
    return {"charms": 0.05, "bracelets": 0.10, "necklaces": 0.08, "rings": 0.20, "earrings": 0.04}


def _records() -> tuple[float, float, float]:
    return (0.60, 0.30, 0.10)


@dataclass(frozen=True)
class RetailerSettings:
    """Everything that shapes the synthetic retailer; ``seed`` and ``customers`` fix the output.

    Purchase process (BG/NBD, Fader, Hardie & Lee 2005, in operational weeks):
    ``r, alpha`` (purchase rate ``λ ~ Gamma(r, rate alpha)``), ``a, b``
    (dropout probability after each repeat purchase ``p ~ Beta(a, b)``).
    Spend (Gamma-Gamma, Fader, Hardie & Lee 2005 "RFM and CLV"): the gross
    value of an order in EUR is ``z ~ Gamma(p_shape, rate nu)`` with
    ``nu ~ Gamma(q, rate gamma)``, so a person's mean order value is
    ``p_shape / nu`` and the population mean ``p_shape * gamma / (q - 1)``.
    """

    seed: int = 42
    customers: int = 10_000
    start: str = "2021-01-01"
    end: str = "2025-12-31"
    # BG/NBD purchase process (weeks of operational time)
    r: float = 0.2
    alpha: float = 10.0
    a: float = 0.7
    b: float = 2.5
    # Gamma-Gamma spend (EUR per order, gross at list prices)
    p_shape: float = 6.0
    q: float = 4.0
    gamma: float = 50.0
    season: SeasonShape = field(default_factory=SeasonShape)
    # channels and markets
    store_share: float = 0.40
    cross_border_rate: float = 0.03
    lines_probs: tuple[float, float, float, float] = (0.55, 0.28, 0.12, 0.05)
    # discounts
    discount_prone_share: float = 0.25
    discount_rate_prone: float = 0.40
    discount_rate_other: float = 0.08
    black_friday_discount_factor: float = 2.5
    # returns by category (probability that a line is returned)
    return_rates: dict[str, float] = field(default_factory=_returns)
    # identity fragmentation
    records_probs: tuple[float, float, float] = field(default_factory=_records)
    loyalty_member_share: float = 0.50
    record_loyalty_rate: float = 0.85
    email_case_variant_rate: float = 0.15
    email_space_variant_rate: float = 0.05
    alt_email_rate: float = 0.05
    name_typo_rate: float = 0.04
    missing_field_rate: float = 0.10
    web_login_rate: float = 0.85
    pos_identified_rate: float = 0.60
    store_loyalty_only_rate: float = 0.35
    store_email_only_rate: float = 0.25
    marketing_consent_rate: float = 0.60
    # engagement (per person-year of a consenting person's marketing record)
    sends_per_year: float = 3.0
    visits_per_year: float = 1.0
    survey_response_rate: float = 0.10
    engagement_lambda_correlation: float = 0.4

    def replace(self, **changes: Any) -> RetailerSettings:
        """A copy with ``changes``; unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for ``truth_settings.json``)."""
        return dataclasses.asdict(self)
