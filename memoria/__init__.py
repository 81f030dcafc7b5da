"""The composition root: settings, wiring (``build_app``) and the ``memoria`` CLI.

Nothing imports this package except entry points and tests.
"""

__version__ = "0.1.0"
