"""Opening stores by URL.

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`
- `postgresql://[user@]host[:port]/dbname[?schema=name&...]` (also `postgres://` and
  `postgresql+psycopg://`); `schema` selects (and creates) a namespace, so tests can isolate
  themselves; the other query parameters go to libpq unchanged.
- online state: `memory://[?max_events=N]`, `redis://host:port/db[?prefix=p&max_events=N&ttl_s=S]`

Backends are imported only when their scheme is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from shoprec.storage.base import Store
    from shoprec.storage.online_state import OnlineState

STORE_SCHEMES = ("sqlite", "postgresql")
ONLINE_SCHEMES = ("memory", "redis")


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased, with a `+driver` suffix dropped ("" if none)."""
    if "://" not in url:
        return ""
    scheme = url.split("://", 1)[0].lower()
    return scheme.split("+", 1)[0]


def sqlite_path(url: str) -> str:
    """File path of a `sqlite://` URL (SQLAlchemy's convention: three slashes, then the path)."""
    rest = url.split("://", 1)[1]
    if rest in ("", "/"):
        return ":memory:"
    if not rest.startswith("/"):
        raise ValueError(f"bad SQLite URL {url!r}: expected sqlite:///path/to/file.db")
    path = rest[1:].split("?", 1)[0]
    return path or ":memory:"


def split_postgres_url(url: str) -> tuple[str, str | None]:
    """(libpq connection URI, schema or None) of a `postgresql://` URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    rest = []
    for k, v in query:
        if k == "schema":
            schema = v
        else:
            rest.append((k, v))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    return conninfo, schema


def open_store(url: str) -> Store:
    """Open (and create if needed) the event/catalog/user store at `url`.

    Raises
    ------
    ValueError
        For an unknown scheme (the message names it) or a store that cannot be opened.
    """
    scheme = scheme_of(url)
    if scheme == "sqlite":
        from shoprec.storage.sqlite_store import SQLiteStore

        return SQLiteStore(sqlite_path(url), url=url)
    if scheme in ("postgresql", "postgres"):
        from shoprec.storage.postgres_store import PostgresStore

        conninfo, schema = split_postgres_url(url)
        return PostgresStore(conninfo, schema=schema, url=url)
    raise ValueError(
        f"unknown store URL scheme {scheme or '(none)'!r} in {url!r}; "
        f"use one of: {', '.join(s + '://' for s in STORE_SCHEMES)}"
    )


def open_online_state(url: str) -> OnlineState:
    """Open the online state (each user's latest events) at `url`.

    Raises
    ------
    ValueError
        For an unknown scheme (the message names it) or bad parameters.
    """
    from shoprec.storage.online_state import MemoryOnlineState, RedisOnlineState

    scheme = scheme_of(url)
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    max_events = int(params.pop("max_events", 200))
    if scheme == "memory":
        if params:
            raise ValueError(f"unknown memory:// parameter(s): {', '.join(sorted(params))}")
        return MemoryOnlineState(max_events=max_events)
    if scheme in ("redis", "rediss"):
        prefix = params.pop("prefix", "shoprec:recent:")
        ttl_s = int(params.pop("ttl_s", 0))
        if params:
            raise ValueError(f"unknown redis:// parameter(s): {', '.join(sorted(params))}")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return RedisOnlineState(base, prefix=prefix, max_events=max_events, ttl_s=ttl_s)
    raise ValueError(
        f"unknown online-state URL scheme {scheme or '(none)'!r} in {url!r}; "
        f"use one of: {', '.join(s + '://' for s in ONLINE_SCHEMES)}"
    )
