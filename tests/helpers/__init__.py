"""Helpers shared by the tests, one module per kind of thing they hold. Test modules import from here, never
from another test module or from a conftest.py (which holds only pytest fixtures)."""
