"""The version shared by every flexlock distribution (checked by tests/test_packaging.py)."""

__version__ = "0.12.0"
