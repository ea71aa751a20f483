"""Version names order the serving layer: pruning keeps the newest by name, so names must never go back."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from patron.serving.layout import MANIFEST, VERSIONS, new_version, versions


def _make(root: Path, name: str) -> None:
    folder = root / VERSIONS / name
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text("{}")


def test_publishes_within_one_clock_tick_get_names_in_publish_order(tmp_path: Path) -> None:
    now = dt.datetime(2026, 12, 7, 18, 14, 29, tzinfo=dt.UTC)
    made = []
    for _ in range(20):
        name = new_version(tmp_path, now)
        _make(tmp_path, name)
        made.append(name)
    assert versions(tmp_path) == made
    assert len(set(made)) == 20


def test_a_clock_set_back_still_gives_a_later_name(tmp_path: Path) -> None:
    _make(tmp_path, new_version(tmp_path, dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC)))
    earlier = new_version(tmp_path, dt.datetime(2026, 12, 7, 17, 0, tzinfo=dt.UTC))
    _make(tmp_path, earlier)
    assert versions(tmp_path)[-1] == earlier


def test_names_from_the_older_layout_order_with_new_ones(tmp_path: Path) -> None:
    _make(tmp_path, "20261207T181429Z-1f8599")  # whole seconds, as versions were named before
    newer = new_version(tmp_path, dt.datetime(2026, 12, 7, 18, 14, 29, tzinfo=dt.UTC))
    _make(tmp_path, newer)
    (tmp_path / VERSIONS / "lost+found").mkdir()  # a folder that is no version is ignored
    assert versions(tmp_path) == ["20261207T181429Z-1f8599", newer]
