"""The customer analytic record (CAR): hundreds of documented, point-in-time features per customer.

>>> from patron.transforms.features import build_car, registry
>>> car = build_car(tables, as_of="2025-01-01")        # doctest: +SKIP
>>> len(registry())                                     # doctest: +SKIP
"""

from patron.transforms.features.context import IDENTITY_TABLES, INPUT_TABLES, as_of_date
from patron.transforms.features.registry import build_car, features_by_group, get_feature, registry
from patron.transforms.features.spec import GROUPS, Feature

__all__ = ["GROUPS", "IDENTITY_TABLES", "INPUT_TABLES", "Feature", "as_of_date", "build_car", "features_by_group",
           "get_feature", "registry"]
