"""Settings: what ``patron.toml`` holds, read once and passed down as one object.

The package's modules each do one job; every public name is re-exported here, so
``from patron.config import Settings, load_settings`` is the way to import them:

- :mod:`~patron.config.settings`: the settings dataclasses and their defaults;
- :mod:`~patron.config.audiences`: audience definitions and the shipped playbooks;
- :mod:`~patron.config.sources`: source mappings and the words they may use;
- :mod:`~patron.config.purchase_models`: the purchase models' one list of names;
- :mod:`~patron.config.parse`: reading ``patron.toml`` and checking every value;
- :mod:`~patron.config.template`: the default ``patron.toml`` ``patron init`` writes.
"""

from patron.config.audiences import PLAYBOOK_AUDIENCES, RETENTION_SHARE, AudienceDefinition
from patron.config.parse import load_settings, parse_settings
from patron.config.purchase_models import (
    PURCHASE_MODEL_ALIASES,
    PURCHASE_MODEL_LABELS,
    PURCHASE_MODEL_NAMES,
    purchase_model_name,
)
from patron.config.settings import (
    CONFIG_NAME,
    DEFAULT_RFM_GRID,
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
from patron.config.template import DEFAULT_TOML, write_default_config

__all__ = [
    "CONFIG_NAME",
    "DATE_READINGS",
    "DEFAULT_RFM_GRID",
    "DEFAULT_TOML",
    "ENGINES",
    "EXCLUDE_OPERATORS",
    "EXPORT_FORMATS",
    "LAYOUTS",
    "ONLINE_STORES",
    "PLAYBOOK_AUDIENCES",
    "PURCHASE_MODEL_ALIASES",
    "PURCHASE_MODEL_LABELS",
    "PURCHASE_MODEL_NAMES",
    "RETENTION_SHARE",
    "SEASONALITY_MODES",
    "SHIPPED_VALUE_MAPS",
    "TIME_UNITS",
    "TRANSACTION_EXTRAS",
    "UNMAPPED_POLICIES",
    "AudienceDefinition",
    "IdentitySettings",
    "ModelSettings",
    "PrivacySettings",
    "QualitySettings",
    "RunSettings",
    "ScheduledExport",
    "SegmentSettings",
    "ServeSettings",
    "Settings",
    "SourceMapping",
    "SparkSettings",
    "load_settings",
    "parse_settings",
    "purchase_model_name",
    "write_default_config",
]
