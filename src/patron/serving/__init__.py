"""The serving layer: versions the batch publishes and the service and pages read (never the warehouse).

- :mod:`patron.serving.layout`: the serving folder, manifests and the ``CURRENT`` pointer;
- :mod:`patron.serving.online`: the online store (embedded SQLite or Redis);
- :mod:`patron.serving.publish`: ``patron publish``;
- :mod:`patron.serving.reader`: the current version as the service sees it, reloaded when it moves;
- :mod:`patron.serving.events`: orders posted to the service, logged, rescored and taken by the batch.
"""
