"""The payload shapes of the chat domain as clients see them (docs/protocol.md): camelCase JSON objects."""

from __future__ import annotations

from typing import Any

from chatio.chat.reads import Reading
from chatio.store import Message, Quote, Room


def message_wire(message: Message) -> dict[str, Any]:
    """The ``message`` event payload, and every message in acks, events and REST bodies."""
    return {
        "id": message.id,
        "room": message.room,
        "seq": message.seq,
        "user": message.user,
        "userId": message.user_id,
        "displayName": message.display_name or message.user,
        "text": message.text,
        "ts": message.ts,
        "clientMsgId": message.client_msg_id,
        "replyTo": None if message.reply_to is None else quote_wire(message.reply_to),
        "replyCount": message.reply_count,
        "editedAt": message.edited_at,
        "deleted": message.deleted,
        "reactions": [
            {"emoji": emoji, "count": len(users), "users": list(users)} for emoji, users in message.reactions
        ],
        "change": message.change,
    }


def quote_wire(quote: Quote) -> dict[str, Any]:
    """What a reply shows of its parent; ``deleted`` once the parent is gone (``excerpt`` is then null)."""
    return {
        "id": quote.id,
        "seq": quote.seq,
        "user": quote.user,
        "userId": quote.user_id,
        "excerpt": quote.excerpt,
        "deleted": quote.excerpt is None,
    }


def room_wire(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "public": room.public,
        "receipts": room.receipts,
        "retentionDays": room.retention_days,
    }


def reading_wire(reading: Reading) -> dict[str, Any]:
    """Where a user stands in a room: ``lastRead``, ``unread`` and ``lastMessage`` (null in an empty room)."""
    last = reading.last_message
    return {
        "lastRead": reading.last_read,
        "unread": reading.unread,
        "lastMessage": None if last is None else message_wire(last),
    }
