"""marshmallow schemas: one per inbound event and REST body. Unknown fields are always rejected.

:func:`load` is the single entry point: it returns the validated dict or raises a
:class:`~chatio.errors.ChatError` ``invalid_payload`` whose ``field`` names the first bad field. Before any
schema looks at a payload, :func:`load` refuses text that is not well-formed Unicode (a lone UTF-16
surrogate: no store or encoder could keep it) and nesting deeper than :data:`MAX_DEPTH`. Every integer is
at most :data:`MAX_INTEGER`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from chatio.errors import INVALID_PAYLOAD, ChatError
from chatio.store import REACTIONS

#: Names are matched whole (``fullmatch``), after NFKC normalisation (:class:`Name`).
ROOM_PATTERN: Final = r"[\w.:\-]{1,64}"
USERNAME_PATTERN: Final = r"[\w.\-]{1,32}"
CLIENT_MSG_ID_PATTERN: Final = r"[A-Za-z0-9_\-]{1,64}"
MESSAGE_ID_PATTERN: Final = r"[0-9a-f]{24}"
STATUSES: Final = ("online", "away", "busy")
PASSWORD_MIN: Final = 8
PASSWORD_MAX: Final = 256
#: The largest integer a payload or query may carry: JavaScript's ``Number.MAX_SAFE_INTEGER``, well inside
#: the 64-bit integers MongoDB keeps.
MAX_INTEGER: Final = 2**53 - 1
#: How deep a payload may nest (chatio's payloads are flat objects; this bounds the checks' recursion).
MAX_DEPTH: Final = 32
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, numeric strings and floats (``True`` is an ``int`` in Python)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class QueryInteger(fields.Integer):
    """An integer in a query string: 1 to 16 ASCII digits. (``int()`` would also take ``1_0``, ``+1``,
    `` 1 `` and the digits of other scripts, and numbers of any size.)"""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 16:
            raise self.make_error("invalid")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class NormalizedString(fields.String):
    """A string in Unicode normalisation form NFKC: compatibility forms (fullwidth letters, ligatures,
    superscripts) become the plain characters they stand for."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        return unicodedata.normalize("NFKC", super()._deserialize(value, attr, data, **kwargs))


class Name(NormalizedString):
    """A username, room id or client message id: NFKC-normalised, then matched whole by ``pattern``.

    A look-alike written with compatibility forms *is* the name it imitates once normalised; anything else
    the pattern does not allow is refused, a trailing newline included (``re.match`` with ``$`` would take
    one).
    """

    def __init__(self, pattern: str, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pattern = re.compile(pattern)
        self._error = error

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        if self._pattern.fullmatch(name) is None:
            raise ValidationError(self._error)
        return name


def _bounded(minimum: int) -> validate.Range:
    return validate.Range(min=minimum, max=MAX_INTEGER)


def _room(**kwargs: Any) -> Name:
    return Name(ROOM_PATTERN, "Must be 1 to 64 letters, digits, '_', '-', '.' or ':'.", **kwargs)


def _username(**kwargs: Any) -> Name:
    return Name(USERNAME_PATTERN, "Must be 1 to 32 letters, digits, '_', '-' or '.'.", **kwargs)


def _message_id(**kwargs: Any) -> Name:
    return Name(MESSAGE_ID_PATTERN, "Must be a message id: 24 hexadecimal digits.", **kwargs)


def _seq(**kwargs: Any) -> StrictInteger:
    return StrictInteger(validate=_bounded(0), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class GuestAuth(_Strict):
    username = _username(required=True)


class RoomOnly(_Strict):
    """``leave_room``, ``typing_start`` and ``typing_stop``."""

    room = _room(required=True)


class JoinRoom(_Strict):
    room = _room(required=True)
    sinceSeq = _seq()
    sinceChange = _seq()


class _Text(_Strict):
    """A message text: 1 to ``max_length`` characters, trimmed, not blank."""

    text = fields.String(required=True)

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    @validates("text")
    def _check_text(self, value: str, **_kwargs: Any) -> None:
        if len(value) > self.max_length:
            raise ValidationError(f"Longer than maximum length {self.max_length}.")
        if not value.strip():
            raise ValidationError("Must not be blank.")

    @post_load
    def _trim(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["text"] = data["text"].strip()
        return data


class SendMessage(_Text):
    room = _room(required=True)
    clientMsgId = Name(CLIENT_MSG_ID_PATTERN, "Must be 1 to 64 of A-Z a-z 0-9 _ -.")
    replyTo = _message_id()


class EditMessage(_Text):
    room = _room(required=True)
    id = _message_id(required=True)


class MessageRef(_Strict):
    """``delete_message``."""

    room = _room(required=True)
    id = _message_id(required=True)


class React(MessageRef):
    """``react`` and ``unreact``: one of the fixed set of emoji."""

    emoji = fields.String(
        required=True, validate=validate.OneOf(REACTIONS, error="Must be one of: " + " ".join(REACTIONS))
    )


class MarkRead(_Strict):
    room = _room(required=True)
    seq = _seq(required=True)


class RoomOptions(_Strict):
    """``set_room_options``."""

    room = _room(required=True)
    receipts = fields.Boolean(truthy={True}, falsy={False})
    retentionDays = StrictInteger(validate=validate.Range(min=0, max=36_500), allow_none=True)

    @validates_schema
    def _some_option(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "receipts" not in data and "retentionDays" not in data:
            raise ValidationError("Give receipts, retentionDays or both.")


class Moderate(_Strict):
    """``kick``, ``ban``, ``unban``, ``mute`` and ``unmute``."""

    room = _room(required=True)
    user = _username(required=True)
    reason = fields.String(validate=validate.Length(max=500), load_default="")
    seconds = StrictInteger(validate=validate.Range(min=1, max=366 * 86_400))


class RestrictedQuery(_Strict):
    """``GET /api/chat/rooms/{room}/bans`` and ``.../mutes``."""

    limit = QueryInteger(validate=validate.Range(min=1, max=500), load_default=100)


class AuditQuery(RestrictedQuery):
    """``GET /api/chat/moderation/audit``: the same page of entries, of one room or (administrators) all."""

    room = _room()


class UserStatus(_Strict):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class History(_Strict):
    room = _room(required=True)
    before = _seq()
    after = _seq()
    limit = StrictInteger(validate=_bounded(1))


class CreateUser(_Strict):
    """Registration: ``POST /api/chat/users``. Without ``password``, a guest profile (where guests are
    allowed; :meth:`~chatio.accounts.service.AccountService.register` decides)."""

    username = _username(required=True)
    password = fields.String(validate=validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX))
    displayName = fields.String(validate=validate.Length(min=1, max=64))
    email = fields.Email(validate=validate.Length(max=254))


class Login(_Strict):
    username = NormalizedString(required=True, validate=validate.Length(min=1, max=32))
    password = fields.String(required=True, validate=validate.Length(min=1, max=PASSWORD_MAX))


class RefreshBody(_Strict):
    """``POST /api/chat/auth/refresh`` and ``/logout``."""

    refreshToken = fields.String(required=True, validate=validate.Length(min=1, max=256))


class TokenAuth(_Strict):
    """The Socket.IO ``auth`` payload of a signed-in user, and ``refresh_session``."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class CreateRoomCommand(_Strict):
    room = _room(required=True)
    public = fields.Boolean(load_default=True, truthy={True}, falsy={False})


class Invite(_Strict):
    room = _room(required=True)
    user = _username(required=True)


class SetRole(_Strict):
    room = _room(required=True)
    user = _username(required=True)
    role = fields.String(required=True, validate=validate.OneOf(("admin", "member")))


class OpenDm(_Strict):
    user = _username(required=True)


class CreateRoom(_Strict):
    name = _room(required=True)
    public = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    #: The owner's username or id: the caller's own (with a token), or a guest's where guests are allowed.
    ownerId = _username()


class HistoryQuery(_Strict):
    """Query strings arrive as text, so these integers are parsed, not strict."""

    before = QueryInteger(validate=_bounded(0))
    after = QueryInteger(validate=_bounded(0))
    limit = QueryInteger(validate=_bounded(1))


class ChangesQuery(_Strict):
    """``GET /api/chat/rooms/{room}/changes``."""

    sinceChange = QueryInteger(validate=_bounded(0), load_default=0)
    uptoSeq = QueryInteger(validate=_bounded(0))
    limit = QueryInteger(validate=_bounded(1))


class SearchQuery(_Strict):
    """``GET /api/chat/search``: offset pages (best match first has no key to page on)."""

    q = fields.String(required=True, validate=validate.Length(min=1, max=200))
    room = _room()
    limit = QueryInteger(validate=validate.Range(min=1, max=100), load_default=20)
    skip = QueryInteger(validate=validate.Range(min=0, max=1000), load_default=0)


class RoomListQuery(_Strict):
    limit = QueryInteger(validate=validate.Range(min=1, max=200), load_default=50)
    after = _room()


class UsersQuery(_Strict):
    """``GET /api/chat/users``: a page of users by username."""

    online = fields.Boolean(truthy={"true", "1"}, falsy={"false", "0"})
    q = fields.String(validate=validate.Length(min=1, max=32))
    cursor = _username()
    limit = QueryInteger(validate=validate.Range(min=1, max=100), load_default=50)


class PlainFrame(_Strict):
    """A frame of ``/ws/chat`` (seed 001's protocol): ``type`` and, but for PING and REFRESH, ``roomId``;
    TALK needs a ``message``, REFRESH a ``token``. ``userId`` is taken and ignored: the server knows who is
    connected."""

    type = fields.String(
        required=True, validate=validate.OneOf(("ENTER", "TALK", "LEAVE", "PING", "REFRESH"))
    )
    roomId = _room()
    userId = fields.String(validate=validate.Length(max=256))
    message = fields.String()
    sinceSeq = _seq()
    clientMsgId = Name(CLIENT_MSG_ID_PATTERN, "Must be 1 to 64 of A-Z a-z 0-9 _ -.")
    token = fields.String(validate=validate.Length(min=1, max=4096))

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    @validates_schema
    def _check(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data["type"] not in ("PING", "REFRESH") and "roomId" not in data:
            raise ValidationError("Missing data for required field.", field_name="roomId")
        if data["type"] == "REFRESH" and "token" not in data:
            raise ValidationError("Missing data for required field.", field_name="token")
        text = data.get("message")
        if text is not None and len(text) > self.max_length:
            raise ValidationError(f"Longer than maximum length {self.max_length}.", field_name="message")
        if data["type"] == "TALK" and (text is None or not text.strip()):
            raise ValidationError(
                "Must not be blank." if text is not None else "Missing data for required field.",
                field_name="message",
            )

    @post_load
    def _trim(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data["type"] == "TALK":
            data["message"] = data["message"].strip()
        return data


def load(schema: Schema, payload: object, *, prefix: str | None = None) -> dict[str, Any]:
    """Validate ``payload``; raise ``ChatError(invalid_payload)`` naming the first bad field."""
    if not isinstance(payload, dict):
        shown = "nothing" if payload is None else type(payload).__name__
        where = f"{prefix}: " if prefix else ""
        raise ChatError(INVALID_PAYLOAD, f"{where}expected an object, got {shown}", field=prefix)
    _check_values(payload, prefix)
    try:
        result: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        problems = _flatten(exc.messages, prefix)
        field, message = next(iter(problems.items()))
        raise ChatError(INVALID_PAYLOAD, f"{field}: {message}", field=field, fields=problems) from None
    return result


def escaped(text: str) -> str:
    """``text`` with each lone surrogate written as ``\\udXXX``: safe to encode, log and send back."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode()


def _check_values(payload: dict[Any, Any], prefix: str | None) -> None:
    """Refuse a field name or value that is not well-formed Unicode, or that nests past ``MAX_DEPTH``."""
    for key, value in payload.items():
        field = escaped(str(key))
        field = f"{prefix}.{field}" if prefix else field
        problem = (
            "field name is not well-formed Unicode" if escaped(str(key)) != key else _malformed(value, 1)
        )
        if problem is not None:
            raise ChatError(INVALID_PAYLOAD, f"{field}: {problem}", field=field)


def _malformed(value: object, depth: int) -> str | None:
    if isinstance(value, str):
        if value.isascii() or _SURROGATE.search(value) is None:
            return None
        return "Not well-formed Unicode (a lone UTF-16 surrogate)."
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            return f"Nested deeper than {MAX_DEPTH} levels."
        for key in value if isinstance(value, dict) else ():
            if isinstance(key, str) and _malformed(key, depth) is not None:
                return "Not well-formed Unicode (a lone UTF-16 surrogate)."
        for item in value.values() if isinstance(value, dict) else value:
            problem = _malformed(item, depth + 1)
            if problem is not None:
                return problem
    return None


def _flatten(messages: object, prefix: str | None) -> dict[str, str]:
    problems: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            problems.update(_flatten(value, name))
    elif isinstance(messages, list):
        problems[prefix or "payload"] = " ".join(str(item) for item in messages)
    else:
        problems[prefix or "payload"] = str(messages)
    return problems
