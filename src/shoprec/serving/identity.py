"""The one place where user ids arriving over HTTP are checked and mapped to stored ids.

Every route that takes a user id (query, path or event body) calls `UserIds.to_stored`, so
pseudonymisation (a keyed hash of the shop's id, `shoprec.data.pseudonymize`) is wired in here
and nowhere else. Responses echo the id the caller sent; stores, online state, caches, logs
and metric labels only ever see the stored form.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from shoprec.data.pseudonymize import KeyRing, Pseudonymizer
from shoprec.data.schema import parse_id
from shoprec.serving.settings import ServingSettings
from shoprec.types import Event, RecordError


class UserIds:
    """Maps incoming user ids to the ids stores and models hold."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        keys = (
            KeyRing.from_file(settings.pseudonym_keys_file)
            if settings.pseudonym_keys_file
            else None
        )
        self.boundary = Pseudonymizer(keys, settings.pii_policy)

    def to_stored(self, user_id: str) -> str:
        """The stored form of a (validated) incoming user id: its HMAC pseudonym when
        ``pseudonym_keys_file`` is set, else the id itself."""
        return self.boundary.user_id(user_id)

    def event_to_stored(self, event: Event) -> Event:
        """`event` with pseudonymous user, session and event ids and its context cleaned of
        PII (`RecordError` with reason "pii" under the ``reject`` policy)."""
        return self.boundary.event(event, "api")

    def checked(self, user_id: Any, where: str = "query") -> str:
        """Validate an incoming id the way events validate theirs; 422 naming the field."""
        try:
            value = parse_id({"user_id": user_id}, "user_id", "api", 0)
        except RecordError as exc:
            raise field_error(
                where, "user_id", f"{exc.reason}: {exc.detail}".rstrip(": ")
            ) from None
        return value  # type: ignore[return-value]


def field_error(where: str, name: str, msg: str, status: int = 422) -> HTTPException:
    """An error in FastAPI's own validation shape, naming the offending field."""
    return HTTPException(status, detail=[{"loc": [where, name], "msg": msg, "type": "value_error"}])
