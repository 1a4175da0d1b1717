"""otsentry — a passive OT security sensor."""

__version__ = "0.1.0"
