"""shoprec: a self-hosted product recommendation engine for online shops."""

__version__ = "0.1.0"
