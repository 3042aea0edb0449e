"""Stores: events, catalog and users (SQLite, PostgreSQL), online state (memory, Redis), artifacts."""
