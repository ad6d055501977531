"""Display names (issue 15): stored with the account, shown beside the username in messages, room events,
member lists, presence and typing, by socket and by REST."""

from __future__ import annotations

import aiohttp

from chatio.config import Settings
from tests.accounts_helpers import PASSWORD, bearer, call, fast_passwords, login
from tests.harness import connect, serving


async def test_a_display_name_travels_with_its_user() -> None:
    async with (
        serving(Settings(pod_name="test"), passwords=fast_passwords()) as server,
        aiohttp.ClientSession() as http,
    ):
        body = {"username": "minji", "password": PASSWORD, "displayName": "김민지"}
        assert (await call(http, "POST", f"{server.url}/api/chat/users", json=body))[0] == 201
        token = (await login(http, server.url, "minji"))["accessToken"]
        bob = await connect(server.url, "bob")
        minji = await connect(server.url, auth={"token": token})
        try:
            await bob.join("lobby")
            joined = await minji.join("lobby")
            assert {"user": "minji", "displayName": "김민지", "status": "online"} in joined["members"]
            assert {"user": "bob", "displayName": "bob", "status": "online"} in joined["members"]
            assert await bob.expect("user_joined") == {
                "room": "lobby",
                "user": "minji",
                "displayName": "김민지",
            }
            sent = await minji.call("send_message", {"room": "lobby", "text": "안녕하세요"})
            assert sent["message"]["displayName"] == "김민지"
            assert (await bob.expect("message"))["displayName"] == "김민지"
            await minji.call("typing_start", {"room": "lobby"})
            assert (await bob.expect("typing"))["displayName"] == "김민지"
            await minji.call("user_status", {"status": "busy"})
            assert await bob.expect("presence") == {
                "user": "minji",
                "displayName": "김민지",
                "status": "busy",
            }
            url = f"{server.url}/api/chat/rooms/lobby/messages"
            _, page = await call(http, "GET", url, headers=bearer(token))
            assert [m["displayName"] for m in page["messages"]] == ["김민지"]
            _, members = await call(
                http, "GET", f"{server.url}/api/chat/rooms/lobby/members", headers=bearer(token)
            )
            assert {"user": "minji", "displayName": "김민지", "status": "busy"} in members["members"]
        finally:
            await bob.sio.disconnect()
            await minji.sio.disconnect()
