"""Recommendation models: one per file, one interface (`base.Recommender`), one registry."""

from shoprec.models.registry import available, create, register

__all__ = ["available", "create", "register"]
