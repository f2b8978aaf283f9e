"""The single place the version is written."""

__version__ = "2.0.0.dev0"
