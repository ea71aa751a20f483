"""patron's exception family: every error a user can meet derives from ``PatronError``."""

from __future__ import annotations


class PatronError(Exception):
    """Base of every error patron raises on purpose."""


class ConfigError(PatronError):
    """``patron.toml`` is missing, unreadable or holds an invalid setting."""


class DataContractError(PatronError):
    """Input data break the data contract (a missing column, an unreadable file, a bad value)."""


class EngineError(PatronError):
    """A query failed on the engine; carries the table or step it was for."""

    def __init__(self, message: str, *, table: str | None = None, query: str | None = None) -> None:
        context = f" (table {table})" if table else ""
        super().__init__(f"{message}{context}")
        self.table = table
        self.query = query


class NotFittedError(PatronError, AttributeError):
    """A model was asked for predictions before ``fit``."""


class ConvergenceError(PatronError):
    """A model fit did not converge, or the data cannot identify the model."""


class QualityError(PatronError):
    """A blocking data-quality check failed."""


class RunInProgress(PatronError):
    """Another ``patron run`` holds the project's run lock."""


class AccessDenied(PatronError):
    """The caller's role does not allow this action."""


class InvalidKey(PatronError):
    """A request carries no API key, or one that is malformed, unknown or revoked (HTTP 401)."""


class NotFound(PatronError):
    """The thing asked for does not exist: a customer, an audience, orders to score (HTTP 404)."""


class UnknownCustomerError(NotFound):
    """An erasure names a customer key or record that the warehouse does not hold."""


class Unprocessable(PatronError):
    """The request is well formed but cannot be acted on, e.g. no order before the observation end (HTTP 422)."""


class Conflict(PatronError):
    """The request clashes with what is stored, e.g. an order id already recorded (HTTP 409)."""


class NotConfigured(PatronError):
    """What a request needs is missing: fitted models, a published table (HTTP 503 unless told otherwise)."""

    def __init__(self, message: str, *, status_code: int = 503) -> None:
        super().__init__(message)
        self.status_code = status_code
