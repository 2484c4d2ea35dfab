"""The thin Python layer of the Customer parallel hierarchy service (see DESIGN.md)."""

__version__ = "0.1.0"
