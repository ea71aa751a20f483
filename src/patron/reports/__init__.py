"""Reports: charts and documents drawn from results the lower layers computed (data in, files out).

Modules here import matplotlib lazily, inside the drawing functions, so that importing
patron never pulls in a plotting backend.
"""
