"""Message text encrypted at rest (``CHATIO_MESSAGE_KEY``): ciphertext in the database, plain text on the
wire, keys that rotate, and tampering detected."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from pymongo import MongoClient

from chatio.config import ConfigError, Secret, Settings, load_settings
from chatio.store import Draft, Quote, Store
from chatio.store.cipher import CipherError, MessageCipher, parse_keyring
from chatio.store.encrypted import UNREADABLE, EncryptingStore
from tests.harness import clients, serving


def key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


K1, K2 = key("k1"), key("k2")


def test_sealed_text_opens_only_in_its_place_with_a_known_key() -> None:
    cipher = MessageCipher.from_setting(K1)
    sealed = cipher.seal("hello, secret", b"room\x00alice")
    assert sealed.startswith("enc1:k1:") and "hello" not in sealed
    assert cipher.open(sealed, b"room\x00alice") == "hello, secret"
    assert cipher.seal("hello, secret", b"room\x00alice") != sealed  # a fresh nonce every time
    with pytest.raises(CipherError):
        cipher.open(sealed, b"other-room\x00alice")  # copied onto another message
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(CipherError):
        cipher.open(tampered, b"room\x00alice")
    with pytest.raises(CipherError, match="no key with id 'k2'"):
        MessageCipher.from_setting(K2.replace("k2:", "kx:") + "," + K1).open(
            MessageCipher.from_setting(K2).seal("x", b"c"), b"c"
        )
    assert cipher.open("written before encryption", b"c") == "written before encryption"


def test_rotation_keeps_old_messages_readable() -> None:
    old = MessageCipher.from_setting(K1).seal("old news", b"c")
    rotated = MessageCipher.from_setting(f"{K2},{K1}")
    new = rotated.seal("new news", b"c")
    assert rotated.key_id(new) == "k2" and rotated.key_id(old) == "k1"
    assert (rotated.open(old, b"c"), rotated.open(new, b"c")) == ("old news", "new news")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("k1", "expected id:base64-key"),
        ("k1:not base64!", "not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "expected 32 bytes, got 5"),
        (f"{K1},{K1}", "listed twice"),
        ("bad id!:AAAA", "expected id:base64-key"),
    ],
)
def test_bad_keyrings_are_refused_without_showing_keys(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_keyring(raw)
    with pytest.raises(ConfigError) as error:
        load_settings({"CHATIO_MESSAGE_KEY": raw})
    assert problem in str(error.value) and "<hidden>" in str(error.value)
    assert K1.partition(":")[2] not in str(error.value)


def draft(text: str, room: str = "r1", cid: str | None = None) -> Draft:
    return Draft(room, "id-alice", "alice", text, cid)


async def test_the_store_holds_ciphertext_and_hands_out_plain_text(store: Store) -> None:
    plain = await store.append(draft("from before encryption"))
    encrypted = EncryptingStore(store, MessageCipher.from_setting(K1))
    message = await encrypted.append(draft("attack at dawn", cid="c1"))
    assert message.text == "attack at dawn"
    assert (await encrypted.append(draft("attack at dawn", cid="c1"))).id == message.id  # idempotent still
    raw = await store.page("r1", limit=10)
    assert raw.messages[0] == plain and raw.messages[1].text.startswith("enc1:k1:")
    assert "dawn" not in raw.messages[1].text
    page = await encrypted.page("r1", limit=10)
    assert [m.text for m in page.messages] == ["from before encryption", "attack at dawn"]

    # The cost: the database cannot search ciphertext; only messages from before encryption are found.
    assert await encrypted.search("dawn", rooms=None, limit=10) == []
    assert [m.text for m in await encrypted.search("encryption", rooms=None, limit=10)] == [
        "from before encryption"
    ]
    assert await encrypted.search("enc1", rooms=None, limit=10) == []  # ciphertext never matches

    rotated = EncryptingStore(store, MessageCipher.from_setting(f"{K2},{K1}"))
    await rotated.append(draft("after rotation"))
    assert [m.text for m in (await rotated.page("r1", limit=10)).messages][1:] == [
        "attack at dawn",
        "after rotation",
    ]
    # A message whose key is gone is reported, not fatal to its page.
    forgetful = EncryptingStore(store, MessageCipher.from_setting(K2))
    texts = [m.text for m in (await forgetful.page("r1", limit=10)).messages]
    assert texts == ["from before encryption", UNREADABLE, "after rotation"]


async def test_edits_and_quotes_are_sealed_too(store: Store) -> None:
    encrypted = EncryptingStore(store, MessageCipher.from_setting(K1))
    parent = await encrypted.append(draft("the secret plan"))
    quote = Quote(parent.id, parent.seq, parent.user_id, parent.user, "the secret plan")
    reply = await encrypted.append(Draft("r1", "id-bob", "bob", "agreed", reply_to=quote))
    assert reply.reply_to is not None and reply.reply_to.excerpt == "the secret plan"
    edited = await encrypted.edit("r1", parent.id, "the new plan")
    assert edited is not None and edited.text == "the new plan"
    raw = (await store.page("r1", limit=10)).messages
    assert all("plan" not in m.text for m in raw) and raw[1].reply_to is not None
    assert raw[1].reply_to.excerpt is not None and "plan" not in raw[1].reply_to.excerpt
    shown = (await encrypted.page("r1", limit=10)).messages
    assert [m.text for m in shown] == ["the new plan", "agreed"]
    assert shown[1].reply_to is not None and shown[1].reply_to.excerpt == "the secret plan"
    tombstone = await encrypted.delete("r1", parent.id)
    assert tombstone is not None and tombstone.text == "" and tombstone.deleted
    assert [
        m.text for m in (await encrypted.changes("r1", after_change=0, upto_seq=9, limit=9)).messages
    ] == [""]


@pytest.mark.mongo
async def test_end_to_end_ciphertext_in_mongodb(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    settings = Settings(
        pod_name="t",
        mongodb_uri=Secret(mongodb_uri),
        mongodb_database=mongodb_database,
        message_key=Secret(K1),
    )
    async with serving(settings) as server, clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("vault")
        await bob.join("vault")
        sent = await alice.call("send_message", {"room": "vault", "text": "the combination is 1234"})
        assert sent["message"]["text"] == "the combination is 1234"
        assert (await bob.expect("message"))["text"] == "the combination is 1234"
        history = await bob.call("history", {"room": "vault"})
        assert [m["text"] for m in history["messages"]] == ["the combination is 1234"]
    stored = mongodb_admin[mongodb_database]["messages"].find_one({"room": "vault"})
    assert stored is not None and stored["text"].startswith("enc1:k1:") and "1234" not in stored["text"]
