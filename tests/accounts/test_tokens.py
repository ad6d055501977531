"""Access tokens refuse anything but an unexpired HS256 token signed with the server's key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from chatio.accounts.tokens import AccessTokens, TokenError, refresh_token_hash

pytestmark = pytest.mark.unit

SECRET = "s" * 64


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "u1", "name": "alice", "guest": False, "sid": "f1", "iat": now, "exp": now + 60}
    return {**base, "iss": "chatio", "aud": "chatio", **changes}


def unsigned(payload: dict[str, Any]) -> str:
    """An ``alg: none`` token, built by hand the way an attacker would."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_a_token_round_trips() -> None:
    tokens = AccessTokens(SECRET, 60)
    token, expires = tokens.issue("u1", "alice", guest=False, session="f1")
    verified = tokens.verify(token)
    assert (verified.user_id, verified.username, verified.guest, verified.session) == (
        "u1",
        "alice",
        False,
        "f1",
    )
    assert verified.expires_at == expires and expires - time.time() <= 60


def forged() -> str:
    return jwt.encode(claims(), "another key, forged " * 4, algorithm="HS256")


# Built when each test runs, not at import: the tokens must not expire while the suite runs.
BAD_TOKENS: dict[str, tuple[Callable[[], str], str, str]] = {
    "forged": (forged, "unauthorized", "bad signature"),
    "expired": (
        lambda: jwt.encode(claims(exp=int(time.time()) - 1), SECRET, algorithm="HS256"),
        "token_expired",
        "expired",
    ),
    "alg-none": (lambda: unsigned(claims()), "unauthorized", "algorithm 'none' is not allowed"),
    "other-alg": (
        lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),
        "unauthorized",
        "algorithm 'HS512' is not allowed",
    ),
    "audience": (
        lambda: jwt.encode(claims(aud="elsewhere"), SECRET, algorithm="HS256"),
        "unauthorized",
        "audience",
    ),
    "issuer": (
        lambda: jwt.encode(claims(iss="elsewhere"), SECRET, algorithm="HS256"),
        "unauthorized",
        "issuer",
    ),
    "no-exp": (
        lambda: jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET),
        "unauthorized",
        "exp",
    ),
    "garbage": (lambda: "not.a.token", "unauthorized", "not a JWT"),
    "huge": (lambda: "x" * 5000, "unauthorized", "too long"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_refused_with_a_reason(case: str) -> None:
    make, code, reason = BAD_TOKENS[case]
    with pytest.raises(TokenError) as refused:
        AccessTokens(SECRET, 60).verify(make())
    assert refused.value.code == code, refused.value.message
    assert reason.lower() in refused.value.message.lower(), refused.value.message


def test_a_tampered_payload_breaks_the_signature() -> None:
    token, _ = AccessTokens(SECRET, 60).issue("u1", "alice", guest=True, session=None)
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["guest"], body["sub"] = False, "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    with pytest.raises(TokenError, match="bad signature"):
        AccessTokens(SECRET, 60).verify(f"{header}.{forged}.{signature}")


def test_refresh_tokens_are_stored_as_hashes() -> None:
    assert refresh_token_hash("abc") == refresh_token_hash("abc") != refresh_token_hash("abd")
    assert "abc" not in refresh_token_hash("abc") and len(refresh_token_hash("abc")) == 64
