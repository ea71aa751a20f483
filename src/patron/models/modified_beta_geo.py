"""MBG/NBD: the BG/NBD with a drop-out chance right after the first purchase.

Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and
comparison of models for customer base analysis", *International Journal of Research
in Marketing* 24(3), 201-209. Identical to BG/NBD (:mod:`patron.models.beta_geo`)
except that a customer may also drop out at time zero, so customers with no repeat
purchase can be dead: the likelihood (their Appendix A) replaces ``B(a, b+x)`` by
``B(a, b+x+1)`` and ``B(a+1, b+x-1)`` by ``B(a+1, b+x)``, with the second term
present for every ``x``. ``P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))**(r+x))``
and the expectations follow with the drop-out posterior ``Beta(a, b+x+1)``.
The code is BG/NBD's with one extra drop-out opportunity.
"""

from __future__ import annotations

from typing import ClassVar

from patron.models.beta_geo import BetaGeo


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007) with parameters ``r, alpha, a, b``.

    Same columns and predictions as :class:`~patron.models.beta_geo.BetaGeo`.
    """

    _dropout_shift: ClassVar[int] = 1
