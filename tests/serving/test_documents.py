"""A stored document's arrays named again by the manifest's columns; documents of older versions pass through."""

from __future__ import annotations

from patron.serving.documents import expand, stored_columns

COLUMNS = {"rfm": ["customer_key", "frequency", "recency"], "preferences": ["preferred_channel"],
           "orders": ["order_id", "gp2"], "personal": ["source", "email"]}


def test_arrays_become_rows_with_the_key_filled_back() -> None:
    stored = {"rfm": [3, 10.5], "preferences": ["web"], "orders": [["o2", 4.0], ["o1", None]],
              "personal": [["shop", "a@b.c"]], "scores": None}
    assert expand(stored, COLUMNS, "k1") == {
        "rfm": {"customer_key": "k1", "frequency": 3, "recency": 10.5},
        "preferences": {"preferred_channel": "web"},
        "orders": [{"order_id": "o2", "gp2": 4.0}, {"order_id": "o1", "gp2": None}],
        "personal": [{"source": "shop", "email": "a@b.c"}],
        "scores": None,
    }
    assert stored_columns(COLUMNS["rfm"]) == ["frequency", "recency"]


def test_a_missing_row_stays_missing_and_named_documents_pass_through() -> None:
    assert expand({"rfm": None, "orders": []}, COLUMNS, "k1") == {"rfm": None, "orders": []}
    named = {"rfm": {"customer_key": "k1", "frequency": 3}, "orders": [{"order_id": "o1"}]}
    assert expand(named, {}, "k1") == named
    assert expand(named, COLUMNS, "k1") == named  # a part already named is left as it is
