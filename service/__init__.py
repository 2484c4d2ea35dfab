"""The thin Python layer of the Customer parallel hierarchy service (see docs/design.md)."""

__version__ = "0.1.0"
