"""``python -m chatio`` and the ``chatio`` console script: load settings, configure logging, serve.

Shutdown on SIGTERM or SIGINT follows :func:`chatio.app.drain`, bounded by
``CHATIO_SHUTDOWN_TIMEOUT_SECONDS`` (after ``CHATIO_DRAIN_DELAY_SECONDS``); a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from chatio.app import create_app, drain
from chatio.config import ConfigError, Settings, load_settings
from chatio.gctune import GcMonitor, tune_for_serving
from chatio.keys import METRICS, SETTINGS

log = logging.getLogger("chatio")


async def serve(settings: Settings) -> None:
    """Run until a signal, then drain and stop within the configured bound."""
    app = create_app(settings)
    monitor = GcMonitor(app[METRICS].registry)
    monitor.install()
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout_seconds / 2
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=4096)
    await site.start()
    tune_for_serving()
    log.info("chatio serving on http://%s:%d (pod %s)", settings.host, settings.port, settings.pod_name)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await stop.wait()

    bound = app[SETTINGS].drain_delay_seconds + app[SETTINGS].shutdown_timeout_seconds
    try:
        await asyncio.wait_for(_shutdown(app, runner), bound)
    except TimeoutError:
        log.error("shutdown took longer than %.1fs; exiting anyway", bound)

    log.info("stopped")


async def _shutdown(app: web.Application, runner: web.AppRunner) -> None:
    await drain(app)
    await runner.cleanup()


def main() -> None:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"chatio: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
