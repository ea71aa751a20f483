from __future__ import annotations

from pathlib import Path

from patron.contract import CONTRACT
from patron.reports.contract_docs import contract_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"


def test_data_contract_doc_is_generated_from_the_contract() -> None:
    assert DOC.read_text(encoding="utf-8") == contract_markdown(), (
        "docs/data-contract.md is stale: run `python -m patron.reports.contract_docs > docs/data-contract.md`"
    )


def test_every_column_is_documented() -> None:
    text = contract_markdown()
    for table in CONTRACT.values():
        assert f"## `{table.name}`" in text
        for column in table.columns:
            assert column.description, f"{table.name}.{column.name} has no description"
            assert f"| `{column.name}` |" in text
