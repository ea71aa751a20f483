"""Probabilistic customer-base ("buy till you die") models: numpy/scipy only.

Purchase models (frequency, recency, T): :class:`BetaGeo` (BG/NBD), :class:`ParetoNBD`,
:class:`ModifiedBetaGeo` (MBG/NBD); discrete opportunities: :class:`BetaGeoBetaBinom`
(BG/BB); spend: :class:`GammaGamma`; contracts: :class:`ShiftedBetaGeometric` (sBG).
CLV combines a purchase and a spend model: :mod:`patron.models.clv`.

Every model fits by weighted maximum likelihood on the histogram of distinct rows
(pass a ``weights`` or ``n_customers`` column to fit on a histogram directly). A fit
whose parameters the data do not all pin down (one at its limit, a flat direction) is
returned with a :class:`FitWarning` and recorded in ``fit_warnings_``
(:mod:`patron.models.identification`).
"""

from patron.models.beta_geo import BetaGeo
from patron.models.beta_geo_beta_binom import BetaGeoBetaBinom
from patron.models.gamma_gamma import GammaGamma
from patron.models.identification import FitWarning
from patron.models.modified_beta_geo import ModifiedBetaGeo
from patron.models.pareto_nbd import ParetoNBD
from patron.models.shifted_beta_geo import ShiftedBetaGeometric, survivors_to_frame

__all__ = [
    "BetaGeo",
    "BetaGeoBetaBinom",
    "FitWarning",
    "GammaGamma",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "survivors_to_frame",
]
