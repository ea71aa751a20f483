"""The scoring service (``patron serve``): FastAPI over the warehouse, with API keys and roles.

Import :func:`patron.service.app.create_app`; this package needs the ``service`` extra
(FastAPI and uvicorn), which ``import patron`` never imports.
"""
