"""GET /playground: a static page (plain HTML and JS, no build step) to try the service."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

router = APIRouter(tags=["playground"], include_in_schema=False)

_FILES = {"playground.js": "text/javascript", "playground.css": "text/css"}


def _read(name: str) -> bytes:
    return resources.files("shoprec.serving").joinpath("static", name).read_bytes()


@router.get("/playground")
def page() -> Response:
    return Response(_read("playground.html"), media_type="text/html; charset=utf-8")


@router.get("/playground/config.json")
def config(request: Request) -> dict[str, Any]:
    """Example users to pick (chosen by the operator in settings) and the auth policy."""
    s = request.app.state.settings
    return {
        "users": list(s.playground_users),
        "read_requires_key": s.read_requires_key,
        "open_writes": s.open_writes,
    }


@router.get("/playground/{name}")
def asset(name: str) -> Response:
    if name not in _FILES:
        raise HTTPException(404, detail="not found")
    return Response(_read(name), media_type=_FILES[name])
