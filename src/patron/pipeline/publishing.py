"""``patron publish`` and the batch's side of the event log, as steps over the project's settings."""

from __future__ import annotations

from patron.config import Settings
from patron.pipeline.project import Reporter, open_warehouse
from patron.serving.online import open_online_store
from patron.serving.publish import PublishResult
from patron.serving.publish import publish as publish_version


def publish(settings: Settings, *, keep: int | None = None, reporter: Reporter | None = None) -> PublishResult:
    """A new serving version from the warehouse, switched to atomically; versions beyond ``keep`` pruned."""
    reporter = reporter or Reporter()
    with open_warehouse(settings) as warehouse, open_online_store(settings) as store, \
            reporter.task("Publishing", total=1) as advance:
        result = publish_version(warehouse, settings, store, keep=keep)
        advance(1)
    return result
