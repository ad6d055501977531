"""Access tokens (JWT, HS256, pyjwt) and opaque refresh tokens.

An access token is short-lived (``CHATIO_ACCESS_TOKEN_TTL_SECONDS``) and self-contained: ``sub`` (user id),
``name`` (username), ``guest``, ``sid`` (the session, i.e. the refresh token family; absent for guests),
``iat``, ``exp``, ``iss`` and ``aud`` (both ``chatio``). Verification accepts HS256 only: a token whose
header names another algorithm (``none`` included) is refused before its signature is looked at.

A refresh token is 32 random bytes; the server stores only its SHA-256 (:func:`refresh_token_hash`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from typing import Any, Final

import jwt

ALGORITHM: Final = "HS256"
ISSUER: Final = "chatio"
AUDIENCE: Final = "chatio"
MAX_TOKEN_LENGTH: Final = 4096

#: Why a token was refused; the codes reach clients (docs/protocol.md).
EXPIRED: Final = "token_expired"
INVALID: Final = "unauthorized"


class TokenError(Exception):
    """A refused token. ``code`` is :data:`EXPIRED` or :data:`INVALID`; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    username: str
    guest: bool
    session: str | None
    expires_at: float


class AccessTokens:
    """Issues and verifies access tokens signed with ``secret``."""

    def __init__(self, secret: str, ttl_seconds: float) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: str, username: str, *, guest: bool, session: str | None) -> tuple[str, float]:
        """A new token and the Unix time at which it expires."""
        now = int(time.time())
        expires = now + max(1, round(self.ttl_seconds))
        claims: dict[str, Any] = {
            "sub": user_id,
            "name": username,
            "guest": guest,
            "iat": now,
            "exp": expires,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        if session is not None:
            claims["sid"] = session
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), float(expires)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; :class:`TokenError` naming the problem otherwise."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(INVALID, "token invalid: empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError(INVALID, "token invalid: not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(
                INVALID, f"token algorithm {header.get('alg')!r} is not allowed (only {ALGORITHM})"
            )
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "name", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(EXPIRED, "token expired: refresh it and connect again") from None
        except jwt.InvalidSignatureError:
            raise TokenError(INVALID, "token invalid: bad signature") from None
        except jwt.PyJWTError as exc:
            raise TokenError(INVALID, f"token invalid: {exc}") from None
        if not isinstance(claims["sub"], str) or not isinstance(claims["name"], str):
            raise TokenError(INVALID, "token invalid: malformed claims")
        session = claims.get("sid")
        return AccessClaims(
            user_id=claims["sub"],
            username=claims["name"],
            guest=claims.get("guest") is True,
            session=session if isinstance(session, str) else None,
            expires_at=float(claims["exp"]),
        )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    """What the store keeps instead of the token: a leaked database holds no usable refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_hex(12)


def random_secret() -> str:
    """A signing key for a process started without ``CHATIO_JWT_SECRET``."""
    return secrets.token_urlsafe(48)
