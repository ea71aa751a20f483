"""The synthetic jewellery retailer with ground truth, behind ``patron generate``.

>>> from patron.simulate import generate_retailer, write_retailer
>>> retailer = generate_retailer(customers=1_000, seed=1)   # doctest: +SKIP
>>> write_retailer(retailer, "out", fmt="csv")               # doctest: +SKIP
"""

from patron.simulate.retailer import Retailer, generate_retailer, write_retailer
from patron.simulate.settings import RetailerSettings

__all__ = ["Retailer", "RetailerSettings", "generate_retailer", "write_retailer"]
