"""Reading ``patron.toml``: every value checked once, into one :class:`~patron.config.settings.Settings`."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from patron.config.audiences import PLAYBOOK_AUDIENCES, AudienceDefinition
from patron.config.purchase_models import purchase_model_name
from patron.config.settings import (
    CONFIG_NAME,
    ENGINES,
    EXPORT_FORMATS,
    ONLINE_STORES,
    SEASONALITY_MODES,
    TIME_UNITS,
    IdentitySettings,
    ModelSettings,
    PrivacySettings,
    QualitySettings,
    RunSettings,
    ScheduledExport,
    SegmentSettings,
    ServeSettings,
    Settings,
    SparkSettings,
)
from patron.config.sources import (
    DATE_READINGS,
    EXCLUDE_OPERATORS,
    LAYOUTS,
    SHIPPED_VALUE_MAPS,
    TRANSACTION_EXTRAS,
    UNMAPPED_POLICIES,
    SourceMapping,
)
from patron.errors import ConfigError

#: Builds the error for a source setting: ``fail(key, rule)`` reads "<source>: <key> <rule>".
Failure = Callable[[str, str], ConfigError]


def load_settings(project_dir: Path | str | None = None) -> Settings:
    """Read ``patron.toml`` from ``project_dir`` (default: the working folder)."""
    folder = Path(project_dir) if project_dir is not None else Path.cwd()
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_NAME} in {folder.resolve()}; run `patron init` first")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_settings(data, folder)


def parse_settings(data: dict[str, Any], project_dir: Path) -> Settings:
    """Settings from the parsed TOML ``data``; every value is checked here, once."""
    engine = data.get("engine", "duckdb")
    if engine not in ENGINES:
        raise ConfigError(f"{CONFIG_NAME}: engine must be one of {ENGINES}, not {engine!r}")
    model_values = dict(_section(data, "model"))
    if "horizons_months" in model_values:
        model_values["horizons_months"] = tuple(int(h) for h in model_values["horizons_months"])
    model = _build(ModelSettings, model_values, "model")
    if model.time_unit not in TIME_UNITS:
        raise ConfigError(f"{CONFIG_NAME}: [model] time_unit must be one of {tuple(TIME_UNITS)}")
    if model.value not in ("gp2", "revenue"):
        raise ConfigError(f"{CONFIG_NAME}: [model] value must be 'gp2' or 'revenue'")
    try:
        model = replace(model, purchase_model=purchase_model_name(model.purchase_model))
    except ConfigError as exc:
        raise ConfigError(f"{CONFIG_NAME}: [model] {exc}") from exc
    if model.holdout_months <= 0:
        raise ConfigError(f"{CONFIG_NAME}: [model] holdout_months must be positive")
    if model.seasonality not in SEASONALITY_MODES:
        raise ConfigError(f"{CONFIG_NAME}: [model] seasonality must be one of {SEASONALITY_MODES}, "
                          f"not {model.seasonality!r}")
    if not model.horizons_months or any(h <= 0 for h in model.horizons_months):
        raise ConfigError(f"{CONFIG_NAME}: [model] horizons_months must be positive integers")
    currency = _section(data, "reporting").get("currency", "EUR")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        raise ConfigError(f"{CONFIG_NAME}: [reporting] currency must be an ISO 4217 code")
    audiences = _audiences(data.get("audiences", []))
    run = _run(_section(data, "run"))
    unknown = sorted({e.audience for e in run.exports} - {a.name for a in audiences})
    if unknown:
        raise ConfigError(f"{CONFIG_NAME}: [[run.exports]] name(s) no audience: {', '.join(unknown)}; the audiences "
                          f"are {', '.join(a.name for a in audiences)}")
    return Settings(
        project_dir=project_dir.resolve(),
        engine=engine,
        duckdb_path=_section(data, "duckdb").get("path", "patron.duckdb"),
        spark=_build(SparkSettings, _section(data, "spark"), "spark"),
        reporting_currency=currency,
        model=model,
        quality=_quality(_section(data, "quality")),
        identity=_identity(_section(data, "identity")),
        segments=_segments(_section(data, "segments"), model),
        audiences=audiences,
        privacy=_privacy(_section(data, "privacy")),
        sources=_sources(data.get("sources", [])),
        run=run,
        serve=_serve(_section(data, "serve")),
    )


def _serve(values: dict[str, Any]) -> ServeSettings:
    """``[serve]``: the online store and the service's limits."""
    serve = _build(ServeSettings, values, "serve")
    if serve.online_store not in ONLINE_STORES:
        raise ConfigError(f"{CONFIG_NAME}: [serve] online_store must be one of {ONLINE_STORES}, "
                          f"not {serve.online_store!r}")
    for name in ("keep", "workers", "max_body_bytes"):
        value = getattr(serve, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{CONFIG_NAME}: [serve] {name} must be a whole number, 1 or more")
    for name in ("reload_seconds", "rate_per_second"):
        value = getattr(serve, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{CONFIG_NAME}: [serve] {name} must be a number, 0 or more")
    if isinstance(serve.rate_burst, bool) or not isinstance(serve.rate_burst, int) or serve.rate_burst < 0:
        raise ConfigError(f"{CONFIG_NAME}: [serve] rate_burst must be a whole number, 0 or more")
    return serve


def _run(values: dict[str, Any]) -> RunSettings:
    """``[run]``: how often the backtest runs, and the audience files each run writes."""
    values = dict(values)
    entries = values.pop("exports", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{CONFIG_NAME}: [[run.exports]] must be tables (audience, format, out, market)")
    exports = tuple(_build(ScheduledExport, entry, "run.exports") for entry in entries)
    for export in exports:
        if export.format not in EXPORT_FORMATS:
            raise ConfigError(f"{CONFIG_NAME}: [[run.exports]] {export.audience}: format must be one of "
                              f"{EXPORT_FORMATS}, not {export.format!r}")
    run = _build(RunSettings, values, "run")
    every = run.backtest_every_days
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"{CONFIG_NAME}: [run] backtest_every_days must be a whole number of days, 0 or more")
    return replace(run, exports=exports)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The table ``[name]`` of ``data`` (empty when absent); a ``ConfigError`` when it is not a table."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{CONFIG_NAME}: [{name}] must be a table")
    return value


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    """The dataclass ``cls`` from a section's ``values``, naming any setting it does not know."""
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{CONFIG_NAME}: unknown setting(s) in [{section}]: {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{CONFIG_NAME}: [{section}]: {exc}") from exc


def _quality(values: dict[str, Any]) -> QualitySettings:
    """``[quality]``: thresholds as given, the clock tolerance a number of days from 0 to 366."""
    quality = _build(QualitySettings, values, "quality")
    tolerance = quality.future_tolerance_days
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 366:
        raise ConfigError(f"{CONFIG_NAME}: [quality] future_tolerance_days must be a number of days from 0 to 366")
    return quality


def _privacy(values: dict[str, Any]) -> PrivacySettings:
    """``[privacy]``: a true/false switch and the name of the variable holding the key."""
    privacy = _build(PrivacySettings, values, "privacy")
    if not isinstance(privacy.hash_personal_data, bool):
        raise ConfigError(f"{CONFIG_NAME}: [privacy] hash_personal_data must be true or false")
    if not (isinstance(privacy.key_env, str) and privacy.key_env.strip()):
        raise ConfigError(f"{CONFIG_NAME}: [privacy] key_env must name an environment variable")
    return privacy


def _segments(values: dict[str, Any], model: ModelSettings) -> SegmentSettings:
    """``[segments]``, its lists made tuples; tiers, grid, engagement and RFM cells checked for sense."""
    values = dict(values)
    for name in ("tier_names", "tier_shares", "grid_shares", "engagement_days", "service_priority"):
        if name in values:
            values[name] = tuple(values[name])
    if "rfm_grid" in values:
        values["rfm_grid"] = tuple(tuple(cell) for cell in values["rfm_grid"])
    seg = _build(SegmentSettings, values, "segments")
    where = f"{CONFIG_NAME}: [segments]"
    if seg.horizon_months not in model.horizons_months:
        raise ConfigError(f"{where} horizon_months must be one of [model] horizons_months {model.horizons_months}")
    shares = seg.tier_shares
    if len(seg.tier_names) != len(shares) or len(set(seg.tier_names)) != len(shares):
        raise ConfigError(f"{where} tier_names must be distinct and as many as tier_shares")
    if not shares or any(b <= a for a, b in pairwise(shares)) or shares[0] <= 0 or shares[-1] != 1:
        raise ConfigError(f"{where} tier_shares must rise strictly from above 0 to 1")
    if len(seg.service_priority) != len(shares):
        raise ConfigError(f"{where} service_priority needs one priority per tier")
    low, high = seg.grid_shares if len(seg.grid_shares) == 2 else (0.0, 0.0)
    if not 0 < low < high < 1:
        raise ConfigError(f"{where} grid_shares must be two shares 0 < high < high + medium < 1")
    if len(seg.engagement_days) != 2 or not 0 <= seg.engagement_days[0] <= seg.engagement_days[1]:
        raise ConfigError(f"{where} engagement_days must be two day counts, the first not above the second")
    for cell in seg.rfm_grid:
        if (len(cell) != 5 or not isinstance(cell[0], str)
                or not all(isinstance(v, int) and 1 <= v <= 5 for v in cell[1:])):
            raise ConfigError(f"{where} rfm_grid cells are [name, R from, R to, F from, F to] with scores 1-5")
    if seg.retention_offer_share < 0 or seg.acquisition_cost_share < 0:
        raise ConfigError(f"{where} retention_offer_share and acquisition_cost_share must not be negative")
    return seg


def _audiences(entries: Any) -> tuple[AudienceDefinition, ...]:
    """The shipped playbook audiences, then ``[[audiences]]``; a defined name replaces a shipped one."""
    if not isinstance(entries, list):
        raise ConfigError(f"{CONFIG_NAME}: audiences must be an array of tables ([[audiences]])")
    defined: dict[str, AudienceDefinition] = {a.name: a for a in PLAYBOOK_AUDIENCES}
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{CONFIG_NAME}: every [[audiences]] entry needs a name")
        values = dict(entry)
        name = values["name"]
        if name in seen:
            raise ConfigError(f"{CONFIG_NAME}: audience {name!r} is defined twice")
        seen.add(name)
        where = values.get("where", [])
        if not isinstance(where, list) or not all(isinstance(c, list) for c in where):
            raise ConfigError(f"{CONFIG_NAME}: audience {name!r}: where must be a list of [column, operator, value]")
        values["where"] = tuple(tuple(tuple(v) if isinstance(v, list) else v for v in c) for c in where)
        defined[name] = _build(AudienceDefinition, values, f"audiences {name}")
    return tuple(defined.values())


def _sources(entries: Any) -> tuple[SourceMapping, ...]:
    """``[[sources]]``, each checked against the data contract; names must be distinct."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{CONFIG_NAME}: sources must be an array of tables ([[sources]])")
    sources = [_source(entry, i) for i, entry in enumerate(entries, start=1)]
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{CONFIG_NAME}: source {twice[0]!r} is defined twice")
    return tuple(sources)


def _source(entry: dict[str, Any], number: int) -> SourceMapping:
    """One ``[[sources]]`` entry (the ``number``-th), checked against the data contract and the readers' options."""
    from patron.contract import CONTRACT  # contract imports ibis; settings alone should not

    name = entry.get("name")
    if not (isinstance(name, str) and name.strip()):
        raise ConfigError(f"{CONFIG_NAME}: [[sources]] entry {number} needs a name")
    where = f"{CONFIG_NAME}: source {name!r}:"
    values = dict(entry)

    def fail(key: str, rule: str) -> ConfigError:
        return ConfigError(f"{where} {key} {rule}")

    for key in ("columns", "constants", "values"):
        if not isinstance(values.get(key, {}), dict):
            raise fail(key, f"must be a table ([sources.{key}])")
    exclude = values.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(r, list) for r in exclude):
        raise fail("exclude", "must be a list of [column, operator, value]")
    values["exclude"] = tuple(tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in exclude)
    values["constants"] = {k: _constant_text(v, where, k) for k, v in values.get("constants", {}).items()}
    source = _build(SourceMapping, values, f"sources {name}")
    has_path = isinstance(source.path, str) and bool(source.path.strip())
    if has_path == (source.engine_table is not None):
        raise ConfigError(f"{where} set either path (a file or folder) or engine_table (a table the engine reads)")
    if source.engine_table is not None and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}",
                                                            str(source.engine_table)):
        raise fail("engine_table", f"must be a table name such as sales.orders_export, not {source.engine_table!r}")
    if (source.table is None) == (source.layout is None):
        raise ConfigError(f"{where} set either table (a contract table) or layout = \"transactions\"")
    if source.layout is not None and source.layout not in LAYOUTS:
        raise fail("layout", f"must be one of {LAYOUTS}, not {source.layout!r}")
    if source.table is not None and source.table not in CONTRACT:
        raise fail("table", f"must be a contract table ({', '.join(sorted(CONTRACT))}), not {source.table!r}")
    known = {c for t in source.tables for c in CONTRACT[t].column_names}
    if source.layout == "transactions":
        known |= set(TRANSACTION_EXTRAS)
    for key in ("columns", "constants", "values"):
        for column, value in getattr(source, key).items():
            if column not in known:
                raise fail(f"[sources.{key}] {column}", f"is not a column of {' or '.join(source.tables)}")
            if key == "columns" and not (isinstance(value, str) and value.strip()):
                raise fail(f"[sources.columns] {column}", "must name a column of the file")
            if key == "values" and not (value in SHIPPED_VALUE_MAPS or isinstance(value, dict)):
                raise fail(f"[sources.values] {column}",
                           f"must be a table of value = value or one of {SHIPPED_VALUE_MAPS}")
            if key == "values" and isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
                raise fail(f"[sources.values] {column}", "must map values to text")
    both = sorted(set(source.columns) & set(source.constants))
    if both:
        raise fail(both[0], "is both in [sources.columns] and [sources.constants]")
    if {"unit_price", "amount"} <= set(source.columns) | set(source.constants):
        raise fail("columns", "map unit_price or amount, not both")
    _check_format(source, fail)
    for rule in source.exclude:
        _check_rule(rule, fail)
    return source


def _constant_text(value: Any, where: str, column: str) -> str:
    """A ``[sources.constants]`` value as the text every row gets (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where} [sources.constants] {column} must be text, a number or true/false")


def _check_format(source: SourceMapping, fail: Failure) -> None:
    """How the file is read: delimiter, encoding, sheet, number and date spellings, time zone, unmapped policy."""
    import codecs
    import zoneinfo

    delimiter = source.delimiter
    if delimiter is not None and not (isinstance(delimiter, str)
                                      and (len(delimiter) == 1 or delimiter == "whitespace")):
        raise fail("delimiter", 'must be one character or "whitespace"')
    if source.encoding is not None:
        try:
            codecs.lookup(str(source.encoding))
        except LookupError:
            raise fail("encoding", f"{source.encoding!r} is not a known encoding") from None
    if source.sheet is not None and not isinstance(source.sheet, str | int):
        raise fail("sheet", "must be a sheet name or number")
    if not isinstance(source.skip_rows, int) or isinstance(source.skip_rows, bool) or source.skip_rows < 0:
        raise fail("skip_rows", "must be a whole number, 0 or more")
    if source.decimal not in (".", ","):
        raise fail("decimal", 'must be "." or ","')
    if source.thousands not in ("", ",", ".", " ", "'"):
        raise fail("thousands", 'must be "", ",", ".", " " or "\'"')
    if source.thousands == source.decimal:
        raise fail("thousands", "must differ from decimal")
    date_format = source.date_format
    if date_format is not None and not (
            date_format in DATE_READINGS or (isinstance(date_format, str) and "%" in date_format)):
        raise fail("date_format", f"must be a strftime pattern (\"%d/%m/%Y %H:%M\") or one of {DATE_READINGS}")
    try:
        zoneinfo.ZoneInfo(str(source.time_zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise fail("time_zone", f"{source.time_zone!r} is not an IANA time zone (\"Europe/London\")") from None
    if source.unmapped not in UNMAPPED_POLICIES:
        raise fail("unmapped", f"must be one of {UNMAPPED_POLICIES}")


def _check_rule(rule: tuple[Any, ...], fail: Failure) -> None:
    """One ``exclude`` rule: a file column, a known operator and the value that operator takes."""
    shown = list(rule)
    if len(rule) < 2 or not isinstance(rule[0], str) or rule[1] not in EXCLUDE_OPERATORS:
        raise fail("exclude", f"rule {shown} must be [file column, operator, value]; operators: "
                   + ", ".join(EXCLUDE_OPERATORS))
    unary = rule[1] in ("is empty", "is not empty")
    if len(rule) != (2 if unary else 3):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes {'no value' if unary else 'one value'}")
    if rule[1] in ("in", "not in") and not isinstance(rule[2], tuple):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes a list of values")
    if rule[1] in ("<", "<=", ">", ">=") and (isinstance(rule[2], bool) or not isinstance(rule[2], int | float)):
        raise fail("exclude", f"rule {shown}: {rule[1]!r} takes a number")


def _identity(values: dict[str, Any]) -> IdentitySettings:
    """``[identity]``, the corroborating fields a tuple and the match threshold in (0, 1]."""
    values = dict(values)
    if "phone_corroboration" in values:
        values["phone_corroboration"] = tuple(values["phone_corroboration"])
    identity = _build(IdentitySettings, values, "identity")
    if not 0.0 < identity.match_threshold <= 1.0:
        raise ConfigError(f"{CONFIG_NAME}: [identity] match_threshold must be in (0, 1]")
    return identity
