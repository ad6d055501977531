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


LONE_SURROGATE = "\ud83d"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"room": "lobby", "text": f"cut {LONE_SURROGATE}"}, "text"),
        ({"room": "lobby", "text": "hi", LONE_SURROGATE: 1}, "\\ud83d"),
        ({"room": "lobby", "text": [[[[["deep"]]]]] * 1}, "text"),
        ({"room": "lobby\n", "text": "hi"}, "room"),
        ({"room": "lobby", "text": "hi", "clientMsgId": "ok\n"}, "clientMsgId"),
    ],
)
def test_text_that_is_not_unicode_and_names_with_a_tail_are_refused(
    payload: dict[str, Any], field: str
) -> None:
    assert refused(send(), payload).field == field


def test_nesting_is_bounded() -> None:
    nested: Any = "x"
    for _ in range(schemas.MAX_DEPTH):
        nested = [nested]
    assert "Nested deeper" in refused(send(), {"room": "lobby", "text": nested}).message


def test_names_are_nfkc_normalised() -> None:
    fullwidth = "".join(chr(ord(char) + 0xFEE0) for char in "lobby")
    assert schemas.load(schemas.RoomOnly(), {"room": fullwidth}) == {"room": "lobby"}
    assert schemas.load(schemas.OpenDm(), {"user": "\ufb01ona"}) == {"user": "fiona"}


@pytest.mark.parametrize("value", [schemas.MAX_INTEGER + 1, 2**63, 2**64])
def test_integers_are_bounded(value: int) -> None:
    assert refused(schemas.JoinRoom(), {"room": "lobby", "sinceSeq": value}).field == "sinceSeq"
    assert schemas.load(schemas.JoinRoom(), {"room": "lobby", "sinceSeq": schemas.MAX_INTEGER})


@pytest.mark.parametrize("value", ["1_0", "+1", " 1", "\uff11", "1e3", "12345678901234567"])
def test_query_integers_are_plain_ascii_digits(value: str) -> None:
    assert refused(schemas.HistoryQuery(), {"after": value}).field == "after"
