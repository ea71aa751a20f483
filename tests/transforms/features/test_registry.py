"""The feature registry: enough features, each declared once and documented; the data dictionary in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.transforms.features import GROUPS, Feature, features_by_group, registry
from patron.transforms.features.dictionary import dictionary_markdown
from patron.transforms.features.registry import dependencies
from patron.transforms.features.spec import DERIVED

DOC = Path(__file__).resolve().parents[3] / "docs" / "data-dictionary.md"


def test_at_least_200_uniquely_named_features_in_every_group() -> None:
    features = registry()
    names = [f.name for f in features]
    assert len(features) >= 200
    assert len(set(names)) == len(names)
    assert {f.group for f in features} == set(GROUPS)
    counts = {group: len(fs) for group, fs in features_by_group().items()}
    assert sum(counts.values()) == len(features) and min(counts.values()) >= 5


def test_every_feature_is_documented() -> None:
    for f in registry():
        assert f.definition.strip() and f.description.strip(), f.name
        assert f.description.rstrip().endswith("."), f.name


def test_derived_features_read_registered_features_only() -> None:
    names = {f.name for f in registry()}
    for f in registry():
        needs = dependencies(f.name)
        assert needs <= names, (f.name, needs - names)
        assert bool(needs) == (f.source == DERIVED), f.name
    assert dependencies("lifecycle_stage") == {"orders_all", "tenure_days", "days_since_reactivation",
                                               "days_since_last_order"}


@pytest.mark.parametrize(("field", "value"), [("group", "misc"), ("dtype", "decimal"), ("source", "web"),
                                              ("name", "Revenue")])
def test_a_malformed_feature_is_refused(field: str, value: str) -> None:
    fields = {"name": "x", "group": "financial", "dtype": "float64", "definition": "d", "description": "d.",
              "source": "orders", "expr": lambda t: t.gp2.sum()}
    with pytest.raises(ValueError):
        Feature(**{**fields, field: value})


def test_data_dictionary_is_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == dictionary_markdown(), (
        "docs/data-dictionary.md is stale: run "
        "`python -m patron.transforms.features.dictionary > docs/data-dictionary.md`"
    )
    text = dictionary_markdown()
    for f in registry():
        assert f"| `{f.name}` | {f.dtype} |" in text
