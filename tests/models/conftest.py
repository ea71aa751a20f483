"""Shared fixtures for the model tests: the CDNOW summary and models fitted on it once."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from patron import datasets

with warnings.catch_warnings():
    # lifetimes (a test-only reference) sets a pandas option that pandas 3 deprecates at import
    warnings.simplefilter("ignore")
    import lifetimes  # noqa: F401


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """CDNOW calibration summary (2,357 customers, weeks)."""
    return datasets.load_cdnow()


@pytest.fixture(scope="session")
def cdnow_repeat(cdnow: pd.DataFrame) -> pd.DataFrame:
    """The 946 CDNOW repeat buyers (for Gamma-Gamma)."""
    return cdnow[cdnow["frequency"] > 0]


@pytest.fixture(scope="session")
def bg_cdnow(cdnow: pd.DataFrame):
    """BG/NBD fitted on CDNOW (shared; tests must not refit it)."""
    from patron.models import BetaGeo

    return BetaGeo().fit(cdnow)


@pytest.fixture(scope="session")
def gg_cdnow(cdnow_repeat: pd.DataFrame):
    """Gamma-Gamma fitted on the CDNOW repeat buyers (shared; tests must not refit it)."""
    from patron.models import GammaGamma

    return GammaGamma().fit(cdnow_repeat)
