"""A server administrator moderates any room, removes any message, and reads every room's audit trail
over REST; registered users over real sockets and REST, on the embedded stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from chatio.config import Secret, Settings
from chatio.store.accounts_memory import MemoryAccountStore
from tests.accounts_helpers import bearer, call, fast_passwords, signed_up
from tests.harness import RunningServer, connect, serving

SETTINGS = Settings(pod_name="t", allow_guests=False, jwt_secret=Secret("a" * 40))


@pytest.fixture
def accounts() -> MemoryAccountStore:
    return MemoryAccountStore()


@pytest.fixture
async def server(accounts: MemoryAccountStore) -> AsyncIterator[RunningServer]:
    async with serving(SETTINGS, passwords=fast_passwords(), accounts=accounts) as running:
        yield running


async def test_an_administrator_acts_in_any_room_and_reads_the_whole_trail(
    server: RunningServer, accounts: MemoryAccountStore
) -> None:
    async with aiohttp.ClientSession() as http:
        owner, member, root = [
            await signed_up(http, server.url, name) for name in ("owner", "member", "root")
        ]
        assert await accounts.set_admin(root["user"]["id"], True)
        sockets = [await connect(server.url, auth={"token": g["accessToken"]}) for g in (owner, member, root)]
        alice, bob, admin = sockets
        try:
            assert [(await s.expect("session"))["admin"] for s in sockets] == [False, False, True]
            await alice.join("club")
            await bob.join("club")
            rude = (await bob.call("send_message", {"room": "club", "text": "rude"}))["message"]
            # Not even in the room: the administrator removes the message and mutes its author.
            removed = await admin.call("delete_message", {"room": "club", "id": rude["id"]})
            assert removed["ok"] and removed["message"]["deleted"]
            muted = await admin.call(
                "mute", {"room": "club", "user": "member", "seconds": 60, "reason": "tone"}
            )
            assert muted["ok"] and (await bob.expect("moderated"))["by"] == "root"
            refused = await alice.call("ban", {"room": "club", "user": "root"})
            assert refused["error"] == {
                "code": "forbidden",
                "message": "you cannot ban 'root' in this room",
                "field": "user",
            }

            trail_url = f"{server.url}/api/chat/moderation/audit"
            status, trail = await call(http, "GET", trail_url, headers=bearer(root["accessToken"]))
            assert status == 200
            assert [(e["action"], e["by"], e["user"], e["reason"]) for e in trail["entries"]] == [
                ("mute", "root", "member", "tone"),
                ("delete_message", "root", "member", ""),
            ]
            assert trail["entries"][1]["messageId"] == rude["id"] and trail["entries"][0]["until"] > 0
            status, _ = await call(http, "GET", trail_url, headers=bearer(owner["accessToken"]))
            assert status == 403
            status, mine = await call(
                http, "GET", f"{trail_url}?room=club", headers=bearer(owner["accessToken"])
            )
            assert status == 200 and len(mine["entries"]) == 2
            status, bad = await call(
                http, "GET", f"{trail_url}?limit=9999", headers=bearer(root["accessToken"])
            )
            assert status == 400 and bad["error"]["field"] == "limit"
        finally:
            for client in sockets:
                await client.sio.disconnect()


async def test_a_rooms_moderators_list_its_bans_and_mutes(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        owner, member, other = [
            await signed_up(http, server.url, name) for name in ("owner", "member", "other")
        ]
        alice = await connect(server.url, auth={"token": owner["accessToken"]})
        try:
            await alice.join("club")
            banned = await alice.call("ban", {"room": "club", "user": "member", "reason": "spam <b>"})
            assert banned["ok"]
            muted = await alice.call("mute", {"room": "club", "user": "other", "seconds": 600})
            assert muted["ok"]
            bans_url = f"{server.url}/api/chat/rooms/club/bans"
            status, bans = await call(http, "GET", bans_url, headers=bearer(owner["accessToken"]))
            assert status == 200
            assert bans == {
                "bans": [
                    {
                        "user": "member",
                        "userId": member["user"]["id"],
                        "by": "owner",
                        "reason": "spam <b>",
                        "at": banned["action"]["at"],
                        "until": None,
                    }
                ]
            }
            status, mutes = await call(
                http, "GET", f"{server.url}/api/chat/rooms/club/mutes", headers=bearer(owner["accessToken"])
            )
            assert status == 200 and [(m["user"], m["until"]) for m in mutes["mutes"]] == [
                ("other", muted["action"]["until"])
            ]
            status, refused = await call(http, "GET", bans_url, headers=bearer(other["accessToken"]))
            assert status == 403 and refused["error"]["code"] == "forbidden"
            status, missing = await call(
                http, "GET", f"{server.url}/api/chat/rooms/nowhere/bans", headers=bearer(owner["accessToken"])
            )
            assert status == 404 and missing["error"]["code"] == "room_not_found"
            status, bad = await call(http, "GET", f"{bans_url}?limit=0", headers=bearer(owner["accessToken"]))
            assert status == 400 and bad["error"]["field"] == "limit"
            status, _ = await call(http, "GET", bans_url)
            assert status == 401
            assert (await alice.call("unban", {"room": "club", "user": "member"}))["ok"]
            status, bans = await call(http, "GET", bans_url, headers=bearer(owner["accessToken"]))
            assert status == 200 and bans == {"bans": []}
        finally:
            await alice.sio.disconnect()
