"""Edits, deletions, replies and reactions end to end: an in-process server, real python-socketio clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.harness import Client, RunningServer, clients, connect, serving


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving() as running:
        yield running


async def send(client: Client, text: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call("send_message", {"room": "lobby", "text": text, **extra})
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


async def test_edit_delete_reply_and_react_reach_the_room(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("lobby")
        await bob.join("lobby")
        parent = await send(alice, "what do we ship today?")
        assert await bob.expect("message") == parent
        assert (parent["replyTo"], parent["replyCount"], parent["editedAt"], parent["deleted"]) == (
            None,
            0,
            None,
            False,
        )

        reply = await send(bob, "the parser", replyTo=parent["id"])
        assert reply["replyTo"] == {
            "id": parent["id"],
            "seq": parent["seq"],
            "user": "alice",
            "userId": parent["userId"],
            "excerpt": "what do we ship today?",
            "deleted": False,
        }
        assert (await alice.expect("message"))["replyTo"] == reply["replyTo"]

        edited = await alice.call(
            "edit_message", {"room": "lobby", "id": parent["id"], "text": " what now? "}
        )
        assert edited["ok"] and edited["message"]["text"] == "what now?" and edited["message"]["editedAt"]
        updated = await bob.expect("message_updated")
        assert updated == edited["message"] and updated["change"] >= 1 and updated["replyCount"] == 1

        reacted = await bob.call("react", {"room": "lobby", "id": parent["id"], "emoji": "👍"})
        assert reacted["message"]["reactions"] == [{"emoji": "👍", "count": 1, "users": ["bob"]}]
        event = await alice.expect("reaction")
        assert (event["emoji"], event["user"], event["added"], event["seq"]) == ("👍", "bob", True, 1)
        assert event["change"] == reacted["message"]["change"] > updated["change"]
        assert (await bob.call("react", {"room": "lobby", "id": parent["id"], "emoji": "👍"}))["ok"]
        await alice.nothing("reaction")  # nothing changed: nobody is told
        unreacted = await bob.call("unreact", {"room": "lobby", "id": parent["id"], "emoji": "👍"})
        assert unreacted["message"]["reactions"] == [] and not (await alice.expect("reaction"))["added"]

        deleted = await alice.call("delete_message", {"room": "lobby", "id": parent["id"]})
        tombstone = deleted["message"]
        assert (tombstone["deleted"], tombstone["text"], tombstone["seq"]) == (True, "", parent["seq"])
        assert await bob.expect("message_deleted") == tombstone

        history = await bob.call("history", {"room": "lobby"})
        assert [m["deleted"] for m in history["messages"]] == [True, False]
        assert history["messages"][1]["replyTo"]["deleted"] is True
        assert history["messages"][1]["replyTo"]["excerpt"] is None


async def test_refusals_name_the_problem(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob", "mallory") as (alice, bob, mallory):
        await alice.join("lobby")
        await bob.join("lobby")
        message = await send(bob, "mine")
        ref = {"room": "lobby", "id": message["id"]}

        async def error(client: Client, event: str, payload: dict[str, Any]) -> tuple[str, str | None]:
            ack = await client.call(event, payload)
            assert ack["ok"] is False and ack["error"]["message"], ack
            return ack["error"]["code"], ack["error"].get("field")

        assert await error(alice, "edit_message", {**ref, "text": "not yours"}) == ("forbidden", "id")
        assert await error(mallory, "react", {**ref, "emoji": "👍"}) == ("not_in_room", "room")
        await mallory.join("lobby")
        assert await error(mallory, "delete_message", ref) == ("forbidden", "id")
        assert await error(mallory, "react", {**ref, "emoji": "🦄"}) == ("invalid_payload", "emoji")
        assert await error(bob, "edit_message", {**ref, "text": "   "}) == ("invalid_payload", "text")
        assert await error(bob, "edit_message", {**ref, "id": "nope", "text": "x"}) == (
            "invalid_payload",
            "id",
        )
        assert await error(bob, "edit_message", {**ref, "id": "0" * 24, "text": "x"}) == ("not_found", "id")
        assert await error(bob, "send_message", {"room": "lobby", "text": "x", "replyTo": "f" * 24}) == (
            "not_found",
            "replyTo",
        )
        # The room's owner (alice created it by joining first) removes anyone's message.
        assert (await alice.call("delete_message", ref))["message"]["deleted"]
        assert await error(bob, "edit_message", {**ref, "text": "too late"}) == ("not_found", "id")


async def test_catch_up_after_edits_and_deletions_while_away(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("lobby")
        sent = [await send(alice, f"m{n}") for n in range(3)]
        bob = await connect(server.url, "bob")
        seen = await bob.join("lobby")
        last_seq, last_change = seen["history"][-1]["seq"], seen["change"]
        await bob.sio.disconnect()

        await alice.call("edit_message", {"room": "lobby", "id": sent[0]["id"], "text": "m0 fixed"})
        await alice.call("delete_message", {"room": "lobby", "id": sent[1]["id"]})
        await alice.call("react", {"room": "lobby", "id": sent[2]["id"], "emoji": "🎉"})
        newer = await send(alice, "m3")

        bob = await connect(server.url, "bob")
        try:
            back = await bob.join("lobby", sinceSeq=last_seq, sinceChange=last_change)
            assert back["reset"] is False and [m["id"] for m in back["history"]] == [newer["id"]]
            assert [(m["seq"], m["text"], m["deleted"]) for m in back["changes"]] == [
                (1, "m0 fixed", False),
                (2, "", True),
                (3, "m2", False),
            ]
            assert back["changes"][2]["reactions"] == [{"emoji": "🎉", "count": 1, "users": ["alice"]}]
            assert back["change"] == max(m["change"] for m in back["changes"])
            again = await bob.join("lobby", sinceSeq=newer["seq"], sinceChange=back["change"] + 16)
            assert again["changes"] == [] and again["history"] == []
        finally:
            await bob.sio.disconnect()

        async with aiohttp.ClientSession() as http:
            grant = await http.post(f"{server.url}/api/chat/auth/guest", json={"username": "carol"})
            token = (await grant.json())["accessToken"]
            url = f"{server.url}/api/chat/rooms/lobby/changes?sinceChange={last_change}&uptoSeq=2"
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                body = await response.json()
        assert response.status == 200, body
        assert [m["seq"] for m in body["messages"]] == [1, 2] and body["change"] == back["change"]
        assert body["hasMore"] is False


async def test_unread_counts_follow_reading_on_another_device(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob", "bob") as (alice, phone, laptop):
        await alice.join("lobby")
        joined = await phone.join("lobby")
        assert (joined["lastRead"], joined["unread"], joined["lastMessage"]) == (0, 0, None)
        assert (joined["role"], (await alice.join("lobby"))["role"]) == (None, "owner")  # alice made it
        await laptop.join("lobby")
        sent = [await send(alice, f"m{n}") for n in range(3)]
        read = await phone.call("mark_read", {"room": "lobby", "seq": sent[1]["seq"]})
        assert read == {"ok": True, "lastRead": 2, "unread": 1, "lastMessage": sent[2]}
        assert await laptop.expect("read") == {"room": "lobby", "user": "bob", "seq": 2}
        assert await alice.expect("read") == {"room": "lobby", "user": "bob", "seq": 2}
        again = await laptop.join("lobby")
        assert (again["lastRead"], again["unread"], again["lastMessage"]["id"]) == (2, 1, sent[2]["id"])
        stale = await laptop.call("mark_read", {"room": "lobby", "seq": 1})
        assert stale["lastRead"] == 2  # monotonic, whichever device asks

        options = await alice.call(
            "set_room_options", {"room": "lobby", "receipts": False, "retentionDays": 7}
        )
        assert (
            options["ok"] and options["room"]["receipts"] is False and options["room"]["retentionDays"] == 7
        )
        nothing = await alice.call("set_room_options", {"room": "lobby"})
        assert nothing["error"]["code"] == "invalid_payload"
        assert (await phone.expect("room_updated"))["receipts"] is False
        refused = await phone.call("set_room_options", {"room": "lobby", "receipts": True})
        assert refused["error"]["code"] == "forbidden"
        await laptop.call("mark_read", {"room": "lobby", "seq": 3})
        assert await phone.expect("read") == {"room": "lobby", "user": "bob", "seq": 3}
        await alice.nothing("read")  # the room keeps receipts private now

        async with aiohttp.ClientSession() as http:
            grant = await http.post(f"{server.url}/api/chat/auth/guest", json={"username": "bob"})
            auth = {"Authorization": f"Bearer {(await grant.json())['accessToken']}"}
            async with http.get(f"{server.url}/api/chat/rooms/mine", headers=auth) as response:
                mine = await response.json()
            async with http.get(f"{server.url}/api/chat/rooms/lobby/reads", headers=auth) as response:
                hidden = response.status
            grant = await http.post(f"{server.url}/api/chat/auth/guest", json={"username": "alice"})
            owner = {"Authorization": f"Bearer {(await grant.json())['accessToken']}"}
            async with http.get(f"{server.url}/api/chat/rooms/lobby/reads", headers=owner) as response:
                receipts = await response.json()  # the room's owner still sees them
        assert receipts == {"reads": [{"user": "bob", "seq": 3}, {"user": "alice", "seq": 0}]}
        assert [(r["id"], r["role"], r["lastRead"], r["unread"]) for r in mine["rooms"]] == [
            ("lobby", None, 3, 0)
        ]
        assert mine["rooms"][0]["lastMessage"]["id"] == sent[2]["id"] and hidden == 403


async def test_kick_ban_and_mute_take_effect_at_once_and_are_audited(server: RunningServer) -> None:
    async with clients(server.url, "owner", "troll", "troll", "member") as (owner, phone, laptop, member):
        for client in (owner, phone, laptop, member):
            await client.join("lobby")
        refused = await member.call("ban", {"room": "lobby", "user": "troll"})
        assert refused["error"]["code"] == "forbidden"

        muted = await owner.call("mute", {"room": "lobby", "user": "troll", "seconds": 60, "reason": "calm"})
        assert muted["ok"] and muted["action"]["action"] == "mute" and muted["action"]["until"] > 0
        notice = await phone.expect("moderated")
        assert (notice["action"], notice["user"], notice["by"], notice["reason"]) == (
            "mute",
            "troll",
            "owner",
            "calm",
        )
        quiet = await laptop.call("send_message", {"room": "lobby", "text": "hello?"})
        assert quiet["error"]["code"] == "muted" and quiet["error"]["untilMs"] == muted["action"]["until"]
        assert (await owner.call("unmute", {"room": "lobby", "user": "troll"}))["ok"]
        assert (await laptop.call("send_message", {"room": "lobby", "text": "sorry"}))["ok"]

        assert (await owner.call("ban", {"room": "lobby", "user": "troll", "reason": "again"}))["ok"]
        assert (await member.expect("user_left"))["user"] == "troll"
        gone = await phone.call("send_message", {"room": "lobby", "text": "still here?"})
        assert gone["error"]["code"] == "not_in_room"  # both devices left the room at once
        back = await laptop.call("join_room", {"room": "lobby"})
        assert back["error"]["code"] == "banned"
        assert (await owner.call("unban", {"room": "lobby", "user": "troll"}))["ok"]
        await laptop.join("lobby")
        assert (await owner.call("kick", {"room": "lobby", "user": "troll"}))["ok"]
        assert (await laptop.call("typing_start", {"room": "lobby"}))["error"]["code"] == "not_in_room"

        async with aiohttp.ClientSession() as http:

            async def audit(username: str, query: str) -> tuple[int, Any]:
                grant = await http.post(f"{server.url}/api/chat/auth/guest", json={"username": username})
                auth = {"Authorization": f"Bearer {(await grant.json())['accessToken']}"}
                async with http.get(
                    f"{server.url}/api/chat/moderation/audit{query}", headers=auth
                ) as response:
                    return response.status, await response.json()

            status, trail = await audit("owner", "?room=lobby")
            assert status == 200
            assert [(e["action"], e["by"], e["user"]) for e in trail["entries"]] == [
                ("kick", "owner", "troll"),
                ("unban", "owner", "troll"),
                ("ban", "owner", "troll"),
                ("unmute", "owner", "troll"),
                ("mute", "owner", "troll"),
            ]
            assert (await audit("member", "?room=lobby"))[0] == 403
            assert (await audit("owner", ""))[0] == 403  # every room's trail: server administrators
