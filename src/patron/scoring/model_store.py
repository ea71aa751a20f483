"""The fitted value models and their store: the warehouse table ``models``.

A fit of patron's value models is one :class:`FittedValueModels`: a purchase model
(BG/NBD by default), the Gamma-Gamma spend model (on revenue) and the kept-margin
model, under one ``model_id``. :func:`save_models` writes it to ``models``, one row per
component; :func:`load_models` rebuilds it, with exactly the same predictions (the
parameters are stored as JSON, whose numbers round-trip floats exactly) and the same
intervals (the covariance of the log-parameters is stored beside them).

Table ``models`` (one row per component of a fit):

==============  ===========================================================================
model_id        the fit's id, shared by its components (``m20250101T120000-1a2b3c``)
kind            ``purchase``, ``spend`` or ``margin``
class_name      ``BetaGeo``, ``ParetoNBD``, ``ModifiedBetaGeo``, ``GammaGamma``, ``KeptMargin``
params          JSON object of the parameters (the literature's names)
covariance      JSON list of lists: covariance of the log-parameters (inverse Hessian); NULL for margin
log_likelihood  maximised log-likelihood (NULL for margin)
aic, bic        information criteria (NULL for margin)
n_observations  customers the component was fitted on
fitted_at       when the fit ran (UTC)
champion        true for the components of the champion fit (one fit at a time)
settings        JSON: the model settings the fit ran under and the estimators' options
==============  ===========================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from patron.config import PURCHASE_MODEL_NAMES, purchase_model_name
from patron.engine import Warehouse
from patron.errors import PatronError
from patron.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from patron.models._continuous import ContinuousTimeModel
from patron.models.margin import KeptMargin
from patron.tables import MODELS

#: The models table stores class names; these rebuild them.
_PURCHASE_CLASSES: dict[str, type[ContinuousTimeModel]] = {
    cls.__name__: cls for cls in (BetaGeo, ParetoNBD, ModifiedBetaGeo)
}


def _purchase_models() -> dict[str, type[ContinuousTimeModel]]:
    """Each class under the name :func:`patron.config.purchase_model_name` gives its class name.

    In the order of :data:`patron.config.PURCHASE_MODEL_NAMES`, so the names are written
    once, in the config; a configured name without a class is a ``KeyError`` on import.
    """
    by_name = {purchase_model_name(class_name): cls for class_name, cls in _PURCHASE_CLASSES.items()}
    return {name: by_name[name] for name in PURCHASE_MODEL_NAMES}


#: The purchase models by their one name (:data:`patron.config.PURCHASE_MODEL_NAMES`): what the
#: backtest compares, ``patron fit`` fits and patron.toml names. Older spellings (the class
#: names) are mapped to these by :func:`patron.config.purchase_model_name`.
PURCHASE_MODELS: dict[str, type[ContinuousTimeModel]] = _purchase_models()


def purchase_model_class(name: str) -> type[ContinuousTimeModel]:
    """The purchase model class of ``name`` in any accepted spelling (``bg_nbd``, ``BetaGeo``, …).

    Raises ``ConfigError`` naming the accepted spellings.
    """
    return PURCHASE_MODELS[purchase_model_name(name)]


def purchase_model_key(model: Any) -> str:
    """The name (``bg_nbd``, …) of a purchase model instance; its class name for a class patron does not know."""
    return next((name for name, cls in PURCHASE_MODELS.items() if type(model) is cls), type(model).__name__)


#: The components of a fit, one row each in table ``models``.
KINDS = ("purchase", "spend", "margin")

MODELS_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("kind", pa.string()),
        ("class_name", pa.string()),
        ("params", pa.string()),
        ("covariance", pa.string()),
        ("log_likelihood", pa.float64()),
        ("aic", pa.float64()),
        ("bic", pa.float64()),
        ("n_observations", pa.float64()),
        ("fitted_at", pa.timestamp("us", tz="UTC")),
        ("champion", pa.bool_()),
        ("settings", pa.string()),
    ]
)


@dataclass
class FittedValueModels:
    """One fit of the value models, as :func:`patron.scoring.fit.fit_value_models` returns it.

    Attributes
    ----------
    model_id
        Identifies the fit in the ``models`` and ``scores`` tables.
    fitted_at
        When the fit ran (UTC).
    purchase
        The fitted purchase model (frequency, recency, T in ``unit_days`` units).
    spend
        Gamma-Gamma on revenue per repeat purchase day of repeat buyers.
    margin
        Kept margin (GP2 / revenue) with credibility shrinkage.
    unit_days
        The time unit of the purchase model, in days.
    settings
        The model settings the fit ran under, and the estimators' options.
    statistics
        Per kind: ``log_likelihood``, ``aic``, ``bic``, ``n_observations``.
    champion
        Whether this fit is the champion in the store.
    """

    model_id: str
    fitted_at: pd.Timestamp
    purchase: ContinuousTimeModel
    spend: GammaGamma
    margin: KeptMargin
    unit_days: int
    settings: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, dict[str, float]] = field(default_factory=dict)
    champion: bool = False

    def components(self) -> dict[str, Any]:
        """The three models by kind."""
        return {"purchase": self.purchase, "spend": self.spend, "margin": self.margin}


def new_model_id(now: pd.Timestamp) -> str:
    """A sortable, unique id: ``m`` + UTC time + 6 random hex digits."""
    return f"m{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def fit_statistics(model: Any) -> dict[str, float]:
    """Log-likelihood, AIC, BIC and observations of a fitted model (NaN where it has none)."""
    return {
        "log_likelihood": float(getattr(model, "log_likelihood_", math.nan)),
        "aic": float(getattr(model, "aic_", math.nan)),
        "bic": float(getattr(model, "bic_", math.nan)),
        "n_observations": float(getattr(model, "n_observations_", math.nan)),
    }


def _json_number(value: float) -> float | str:
    """JSON has no inf or NaN: store them as strings that ``float()`` reads back."""
    return value if math.isfinite(value) else repr(value)


def model_rows(models: FittedValueModels, *, champion: bool) -> list[dict[str, Any]]:
    """The ``models`` rows of one fit (one per component)."""
    rows = []
    for kind, model in models.components().items():
        covariance = getattr(model, "log_params_covariance_", None)
        stats = models.statistics.get(kind) or fit_statistics(model)
        rows.append(
            {
                "model_id": models.model_id,
                "kind": kind,
                "class_name": type(model).__name__,
                "params": json.dumps({k: _json_number(v) for k, v in model.params_.items()}),
                "covariance": None if covariance is None else json.dumps(covariance.tolist()),
                **{k: (v if math.isfinite(v) else None) for k, v in stats.items()},
                "fitted_at": models.fitted_at.to_pydatetime(),
                "champion": champion,
                "settings": json.dumps(models.settings, sort_keys=True, default=str),
            }
        )
    return rows


def read_models_table(warehouse: Warehouse) -> pd.DataFrame:
    """The whole ``models`` table (small: three rows per fit), empty when there is none."""
    if not warehouse.has_table(MODELS):
        return MODELS_SCHEMA.empty_table().to_pandas()
    return warehouse.to_pandas(warehouse.table(MODELS))


def save_models(warehouse: Warehouse, models: FittedValueModels, *, champion: bool = True) -> str:
    """Add a fit to table ``models``; as champion (default) it takes the flag from every other fit.

    Returns the fit's ``model_id``. Saving the same ``model_id`` again replaces its rows.
    """
    table = read_models_table(warehouse)
    table = table[table["model_id"] != models.model_id]
    if champion:
        table["champion"] = False
    new = pd.DataFrame(model_rows(models, champion=champion))
    records = [*table.to_dict("records"), *new.to_dict("records")]
    arrow = pa.Table.from_pylist([_clean(r) for r in records], schema=MODELS_SCHEMA)
    warehouse.write(MODELS, arrow)
    models.champion = champion
    return models.model_id


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """A row fit for Arrow: pandas' missing values as None, timestamps as datetimes."""
    out = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
            out[key] = None
        elif isinstance(value, pd.Timestamp):
            out[key] = value.to_pydatetime()
        else:
            out[key] = value
    return out


def load_models(warehouse: Warehouse, model_id: str | None = None) -> FittedValueModels:
    """Rebuild a stored fit: ``model_id``'s, else the champion, else the latest.

    Raises
    ------
    PatronError
        When the store is empty or holds no fit ``model_id``.
    """
    table = read_models_table(warehouse)
    if table.empty:
        raise PatronError("no fitted models in the warehouse; run `patron fit` first")
    if model_id is None:
        champions = table[table["champion"].fillna(False).astype(bool)]
        pool = champions if not champions.empty else table
        model_id = str(pool.sort_values(["fitted_at", "model_id"]).iloc[-1]["model_id"])
    rows = table[table["model_id"] == model_id]
    if rows.empty:
        raise PatronError(f"no fitted models with model_id {model_id!r}; known: {sorted(set(table['model_id']))}")
    by_kind = {str(r["kind"]): r for r in rows.to_dict("records")}
    missing = [k for k in KINDS if k not in by_kind]
    if missing:
        raise PatronError(f"model {model_id!r} lacks component(s) {missing} in table {MODELS}")
    first = by_kind["purchase"]
    settings = json.loads(first["settings"])
    options = settings.get("estimators", {})
    return FittedValueModels(
        model_id=model_id,
        fitted_at=pd.Timestamp(first["fitted_at"]).tz_convert("UTC"),
        purchase=_rebuild(by_kind["purchase"], _PURCHASE_CLASSES, options.get("purchase", {})),
        spend=_rebuild(by_kind["spend"], {"GammaGamma": GammaGamma}, options.get("spend", {})),
        margin=KeptMargin.from_params(_params(by_kind["margin"])),
        unit_days=int(settings["unit_days"]),
        settings=settings,
        statistics={kind: {k: _float(row[k]) for k in ("log_likelihood", "aic", "bic", "n_observations")}
                    for kind, row in by_kind.items()},
        champion=bool(first["champion"]),
    )


def _float(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _params(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in json.loads(row["params"]).items()}


def _rebuild(row: dict[str, Any], classes: dict[str, type], options: dict[str, Any]) -> Any:
    name = str(row["class_name"])
    if name not in classes:
        raise PatronError(f"unknown model class {name!r} in table {MODELS}; expected one of {sorted(classes)}")
    covariance = None if row["covariance"] is None or pd.isna(row["covariance"]) else json.loads(row["covariance"])
    return classes[name](**options).with_params(_params(row), covariance=covariance)


def utc_now() -> pd.Timestamp:
    """Now, in UTC, to the microsecond (what the engines store)."""
    return pd.Timestamp(dt.datetime.now(dt.UTC)).floor("us")
