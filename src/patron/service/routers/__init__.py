"""The service's routers, one per resource; :mod:`patron.service.app` wires them."""
