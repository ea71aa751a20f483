"""Markets and their seasonal dates, checked against published calendars."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from patron.calendar import COUNTRIES, black_friday, easter, mothers_day, nth_weekday


@pytest.mark.parametrize(
    ("country", "year", "expected"),
    [
        ("US", 2024, dt.date(2024, 5, 12)),
        ("DE", 2023, dt.date(2023, 5, 14)),
        ("GB", 2024, dt.date(2024, 3, 10)),  # Easter 31 March - 21 days
        ("GB", 2025, dt.date(2025, 3, 30)),
        ("FR", 2024, dt.date(2024, 5, 26)),
        ("FR", 2021, dt.date(2021, 5, 30)),
        ("FR", 2007, dt.date(2007, 6, 3)),  # the last Sunday of May 2007 was Whit Sunday
        ("SE", 2025, dt.date(2025, 5, 25)),
        ("ES", 2024, dt.date(2024, 5, 5)),
        ("PL", 2022, dt.date(2022, 5, 26)),
        ("JP", 2022, dt.date(2022, 5, 8)),
        ("BR", 2024, dt.date(2024, 5, 12)),  # no rule known: the second Sunday of May
    ],
)
def test_mothers_day(country: str, year: int, expected: dt.date) -> None:
    assert mothers_day(country, year) == expected


def test_black_friday_and_easter() -> None:
    assert [black_friday(y) for y in (2021, 2024, 2025)] == [dt.date(2021, 11, 26), dt.date(2024, 11, 29),
                                                              dt.date(2025, 11, 28)]
    assert [easter(y) for y in (2000, 2019, 2025, 2038)] == [dt.date(2000, 4, 23), dt.date(2019, 4, 21),
                                                              dt.date(2025, 4, 20), dt.date(2038, 4, 25)]


def test_nth_weekday_counts_from_either_end_of_the_month() -> None:
    monday, friday = 0, 4
    assert nth_weekday(2025, 9, monday, 1) == dt.date(2025, 9, 1)  # the month starts on a Monday
    assert nth_weekday(2025, 12, friday, -1) == dt.date(2025, 12, 26)  # December wraps into the next year
    assert nth_weekday(2024, 2, 3, -1) == dt.date(2024, 2, 29)  # leap day, a Thursday


def test_countries_are_distinct_iso_codes() -> None:
    assert len(set(COUNTRIES)) == len(COUNTRIES) == 12
    assert all(len(c) == 2 and c.isupper() for c in COUNTRIES)


def test_the_customer_record_does_not_import_the_simulator() -> None:
    """Layering: the features read dates from patron.calendar, never from the synthetic retailer."""
    code = ("import sys, patron.transforms.features as f; f.registry(); "
            "print(sorted(m for m in sys.modules if m.startswith('patron.simulate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
