"""API keys with scopes, stored hashed, and per-key token-bucket rate limits.

A key is a random string (``shk_`` + 43 url-safe characters, 256 bits) shown once by
``shoprec mint-key``; the service only ever holds its hash: ``sha256:<hex>``, or
``hmac-sha256:<hex>`` under a server-side pepper, so a leaked keys file alone does not let
anyone test guesses offline. Requests carry ``Authorization: Bearer KEY``.

Scopes: ``read`` (recommendations, similar items, retrievers, history), ``write`` (events,
catalog), ``admin`` (erasure, artifact reload; implies the other two). Reads may be open by a
setting, except a shopper's raw history, which always needs a ``read`` key. Missing or unknown key:
401. Known key without the scope: 403. Over the key's rate: 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shoprec.config import ConfigError
from shoprec.serving.settings import SCOPES, ApiKeySpec, ServingSettings

KEY_PREFIX = "shk_"


def mint_key() -> str:
    """A new random API key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, pepper: str = "") -> str:
    """The stored form of `key`: HMAC-SHA256 under `pepper` when given, else SHA-256."""
    if pepper:
        digest = hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()
        return "hmac-sha256:" + digest
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def read_keys_file(path: str | Path) -> list[ApiKeySpec]:
    """Parse a keys file: ``<hash> <scope[,scope...]> [name]`` per line; ``#`` comments.

    Raises `ConfigError` naming the line of any malformed entry.
    """
    specs: list[ApiKeySpec] = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read keys file {path}: {exc}") from exc
    for no, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) < 2 or not parts[0].startswith(("sha256:", "hmac-sha256:")):
            raise ConfigError(
                f"{path}:{no}: expected '<sha256:hex|hmac-sha256:hex> <scopes> [name]'"
            )
        scopes = tuple(s for s in parts[1].split(",") if s)
        bad = set(scopes) - set(SCOPES)
        if bad:
            raise ConfigError(f"{path}:{no}: unknown scope(s) {sorted(bad)}")
        name = " ".join(parts[2:]) or f"key{no}"
        specs.append(ApiKeySpec(parts[0], scopes, name))
    return specs


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a key's label and scopes, or an anonymous client."""

    name: str
    scopes: frozenset[str]
    bucket: str  # rate-limit bucket: the key's hash prefix, or the client address

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


class KeyRing:
    """Hashed keys, looked up by the hash of the presented key."""

    def __init__(self, specs: Iterable[ApiKeySpec], pepper: str = "") -> None:
        self.pepper = pepper
        self._by_hash: dict[str, ApiKeySpec] = {}
        for spec in specs:
            if spec.hash.startswith("hmac-sha256:") and not pepper:
                raise ConfigError(f"key {spec.name!r} is an HMAC hash but no key_pepper is set")
            self._by_hash[spec.hash.lower()] = spec

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, key: str) -> ApiKeySpec | None:
        """The spec of `key`, or None. Hash lookup: the key itself is never compared or kept."""
        if not key or len(key) > 512:
            return None
        for form in (hash_key(key), hash_key(key, self.pepper) if self.pepper else None):
            if form is not None and (spec := self._by_hash.get(form)) is not None:
                return spec
        return None


class RateLimiter:
    """Token buckets per principal: `rate` tokens per second up to `burst`.

    Idle buckets are evicted beyond `max_buckets` (least recently used first), which only
    forgives clients, never punishes them.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, bucket: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(bucket, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[bucket] = (tokens, now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        return wait


class AccessControl:
    """The key ring, the limiter and the policy, built once per app from its settings."""

    def __init__(self, settings: ServingSettings) -> None:
        specs = list(settings.api_keys)
        if settings.keys_file:
            specs += read_keys_file(settings.keys_file)
        self.settings = settings
        self.keys = KeyRing(specs, settings.key_pepper)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)

    def authorise(self, request: Request, scope: str, keyed: bool = False) -> Principal:
        """The request's principal, or an `HTTPException` (401, 403 or 429).

        `keyed` routes need a key with `scope` even when reads are open (a shopper's history).
        """
        header = request.headers.get("authorization", "")
        client = request.client.host if request.client else "unknown"
        anonymous = Principal("anonymous", frozenset(), "ip:" + client)
        open_route = scope == "read" and not keyed and not self.settings.read_requires_key
        if not header:
            if open_route or self.settings.open_writes:
                self._limit(anonymous)
                return anonymous
            self._limit(anonymous)
            raise _unauthorised("missing API key: send 'Authorization: Bearer KEY'")
        scheme, _, token = header.partition(" ")
        spec = self.keys.lookup(token.strip()) if scheme.lower() == "bearer" else None
        if spec is None:
            self._limit(anonymous)  # failed guesses spend the caller's address budget
            raise _unauthorised("invalid API key")
        principal = Principal(spec.name, frozenset(spec.scopes), "key:" + spec.hash[-16:])
        self._limit(principal)
        if not (open_route or self.settings.open_writes or principal.allows(scope)):
            raise HTTPException(403, detail=f"this API key lacks the '{scope}' scope")
        return principal

    def _limit(self, principal: Principal) -> None:
        wait = self.limiter.take(principal.bucket)
        if wait > 0:
            raise HTTPException(
                429,
                detail="rate limit exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


_BEARER = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer KEY`")


def require(
    scope: str, keyed: bool = False
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A FastAPI dependency that admits requests carrying `scope` (see `AccessControl`);
    `keyed` reads need a `read` key even when reads are open."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    # async: it only hashes a header and takes a token under a short lock, so it runs on the
    # event loop instead of costing a worker-thread round trip on every request
    async def dependency(
        request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Security(_BEARER),
    ) -> Principal:
        # `_bearer` only documents the scheme in OpenAPI; the header is parsed in `authorise`
        principal = request.app.state.access.authorise(request, scope, keyed)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}{'_keyed' if keyed else ''}"
    return dependency
