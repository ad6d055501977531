"""GET /api/chat/search as the seeds' users type: Korean, mixed, prefixes; only rooms the caller may read."""

from __future__ import annotations

import aiohttp

from chatio.config import Settings
from tests.accounts_helpers import bearer, call, fast_passwords, signed_up
from tests.harness import connect, serving


async def test_korean_mixed_and_prefix_queries_over_rest() -> None:
    async with (
        serving(Settings(pod_name="test"), passwords=fast_passwords()) as server,
        aiohttp.ClientSession() as http,
    ):
        reader = bearer((await signed_up(http, server.url, "reader"))["accessToken"])
        owner = await signed_up(http, server.url, "owner")
        await call(
            http,
            "POST",
            f"{server.url}/api/chat/rooms",
            json={"name": "secret", "public": False},
            headers=bearer(owner["accessToken"]),
        )
        alice = await connect(server.url, "alice")
        insider = await connect(server.url, auth={"token": owner["accessToken"]})
        try:
            await alice.join("lobby")
            for text in ["오늘 날씨가 좋네요", "안녕하세요", "hello world", "chatio서버 배포 완료"]:
                assert (await alice.call("send_message", {"room": "lobby", "text": text}))["ok"]
            await insider.join("secret")
            await insider.call("send_message", {"room": "secret", "text": "비밀 날씨 정보"})
        finally:
            await alice.sio.disconnect()
            await insider.sio.disconnect()

        async def texts(query: str, **more: str) -> list[str]:
            params = {"q": query, **more}
            status, body = await call(
                http, "GET", f"{server.url}/api/chat/search", params=params, headers=reader
            )
            assert status == 200, body
            return [m["text"] for m in body["messages"]]

        assert await texts("날씨") == ["오늘 날씨가 좋네요"]  # not the private room's
        assert await texts("안녕") == ["안녕하세요"]
        assert await texts("wor") == ["hello world"]
        assert await texts("서버 배포") == ["chatio서버 배포 완료"]
        status, body = await call(
            http, "GET", f"{server.url}/api/chat/search", params={"q": "요", "limit": "1"}, headers=reader
        )
        assert status == 200 and len(body["messages"]) == 1 and body["nextSkip"] == 1
