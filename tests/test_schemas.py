"""Every payload passes one entry point, ``schemas.load``: a refusal is ``invalid_payload`` naming the first
bad field, unknown fields (``$``-operators among them) are never let through, and numbers stay numbers."""

from __future__ import annotations

from typing import Any

import pytest

from chatio import errors, schemas
from chatio.errors import ChatError

pytestmark = pytest.mark.unit


def refused(schema: Any, payload: object, **kwargs: Any) -> ChatError:
    with pytest.raises(ChatError) as caught:
        schemas.load(schema, payload, **kwargs)
    assert caught.value.code == errors.INVALID_PAYLOAD
    return caught.value


def send() -> schemas.SendMessage:
    return schemas.SendMessage(max_length=10)


def test_a_valid_message_is_trimmed_and_kept() -> None:
    loaded = schemas.load(send(), {"room": "lobby", "text": "  hi  ", "clientMsgId": "c-1"})
    assert loaded == {"room": "lobby", "text": "hi", "clientMsgId": "c-1"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "hi"}, "room"),
        ({"room": "lobby"}, "text"),
        ({"room": "lobby", "text": 5}, "text"),
        ({"room": "lobby", "text": "   "}, "text"),
        ({"room": "lobby", "text": "x" * 11}, "text"),
        ({"room": "lobby", "text": "hi", "userId": "someone"}, "userId"),
        ({"room": {"$ne": ""}, "text": "hi"}, "room"),
        ({"room": "lobby", "text": "hi", "$where": "1"}, "$where"),
        ({"room": "has space", "text": "hi"}, "room"),
        ({"room": "lobby", "text": "hi", "clientMsgId": "not/ok"}, "clientMsgId"),
    ],
)
def test_each_bad_field_is_named(payload: dict[str, Any], field: str) -> None:
    error = refused(send(), payload)
    assert error.field == field
    assert error.message.startswith(f"{field}: ")
    assert field in error.as_wire()["fields"]


@pytest.mark.parametrize("payload", [None, [], "text", 5])
def test_a_payload_that_is_not_an_object_says_what_it_was(payload: object) -> None:
    error = refused(schemas.RoomOnly(), payload, prefix="payload")
    assert "expected an object" in error.message and error.field == "payload"


@pytest.mark.parametrize("value", [True, "3", 1.5, -1])
def test_seqs_are_whole_non_negative_numbers(value: object) -> None:
    assert refused(schemas.JoinRoom(), {"room": "lobby", "sinceSeq": value}).field == "sinceSeq"


def test_query_strings_are_parsed_and_range_checked() -> None:
    assert schemas.load(schemas.HistoryQuery(), {"before": "10", "limit": "5"}) == {"before": 10, "limit": 5}
    assert refused(schemas.HistoryQuery(), {"limit": "0"}).field == "limit"
    assert refused(schemas.SearchQuery(), {"q": "x", "limit": "101"}).field == "limit"


def test_a_nested_prefix_names_the_full_path() -> None:
    error = refused(schemas.GuestAuth(), {"username": ""}, prefix="auth")
    assert error.field == "auth.username"
