"""The purchase models' one list of names: spellings accepted, labels for every name."""

from __future__ import annotations

import pytest

from patron.config import PURCHASE_MODEL_ALIASES, PURCHASE_MODEL_LABELS, PURCHASE_MODEL_NAMES, purchase_model_name
from patron.errors import ConfigError


def test_every_name_has_a_label_and_every_alias_a_name() -> None:
    assert list(PURCHASE_MODEL_LABELS) == list(PURCHASE_MODEL_NAMES)
    assert set(PURCHASE_MODEL_ALIASES.values()) == set(PURCHASE_MODEL_NAMES)


@pytest.mark.parametrize(("spelling", "name"), [
    ("bg_nbd", "bg_nbd"), ("BG/NBD", "bg_nbd"), ("Pareto-NBD", "pareto_nbd"), ("ModifiedBetaGeo", "mbg_nbd"),
    (" mbg_nbd ", "mbg_nbd"),
])
def test_spellings_fold_to_the_one_name(spelling: str, name: str) -> None:
    assert purchase_model_name(spelling) == name


def test_an_unknown_model_names_the_accepted_spellings() -> None:
    with pytest.raises(ConfigError, match=r"bg_nbd, pareto_nbd, mbg_nbd.*BetaGeo"):
        purchase_model_name("gamma_gamma")
