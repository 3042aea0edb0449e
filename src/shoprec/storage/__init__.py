"""Stores: events, catalog and users (SQLite, PostgreSQL), online state (memory, Redis), artifacts."""

from shoprec.storage.url import open_online_state, open_store

__all__ = ["open_online_state", "open_store"]
