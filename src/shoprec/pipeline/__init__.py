"""Retrievers, rankers, re-rankers and explanations: the serve-time recommendation chain."""
