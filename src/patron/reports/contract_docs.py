"""Documents generated from patron's single sources of truth (the data contract).

``python -m patron.reports.contract_docs`` prints the data-contract reference kept in
``docs/data-contract.md``; a test fails when the two drift apart.
"""

from __future__ import annotations

from patron.contract import CONTRACT, TableContract


def _rules(table: TableContract, column_name: str) -> str:
    column = table.column(column_name)
    rules = []
    if column.name in table.keys:
        rules.append("key")
    elif column.required:
        rules.append("required")
    if column.positive:
        rules.append("> 0")
    elif column.non_negative:
        rules.append("≥ 0")
    if column.allowed is not None:
        many = len(column.allowed) > 20
        rules.append("ISO 4217 code" if many else "one of " + ", ".join(sorted(column.allowed)))
    return "; ".join(rules)


def contract_markdown() -> str:
    """The data contract as a Markdown reference: every table, key, column, type and rule."""
    lines = [
        "# Data contract",
        "",
        "Generated from `patron.contract` by `python -m patron.reports.contract_docs`; do not edit by hand.",
        "",
        "Every input table patron reads. Money columns are in the row's `currency` (an order's",
        "currency for its lines, returns and costs) and are converted to the reporting currency",
        "through `fx_rates`. Timestamps are ISO 8601; without an offset they are read as UTC.",
        "A row that breaks a rule goes to the `rejects` table with its file, line, field and reason.",
        "",
    ]
    for table in CONTRACT.values():
        lines += [f"## `{table.name}`", "", table.description, "",
                  f"Key: {', '.join(f'`{k}`' for k in table.keys)}", "",
                  "| column | type | rules | description |", "|---|---|---|---|"]
        for column in table.columns:
            lines.append(f"| `{column.name}` | {column.dtype} | {_rules(table, column.name)} | "
                         f"{column.description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(contract_markdown(), end="")
