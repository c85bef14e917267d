"""Fixtures: a fake DriverService and a daemon connected to it in the same event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# Pytest runs with --import-mode=importlib, so helper modules beside this file are put on
# sys.path explicitly; spawned worker processes inherit it and can load the test executor.
sys.path.insert(0, str(Path(__file__).parent))

from fake_driver_server import TOKEN, FakeDriverServer  # noqa: E402

from qpi.driver.bootstrap import Endpoint
from qpi.driver.daemon import DriverDaemon
from qpi.driver.settings import DriverSettings


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeDriverServer]:
    server = FakeDriverServer()
    await server.start()
    yield server
    await server.stop(0)


class RunningDaemon:
    def __init__(self, daemon: DriverDaemon, task: asyncio.Task[int]) -> None:
        self.daemon = daemon
        self.task = task

    async def stop(self, timeout: float = 30.0) -> int:
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, timeout)


@pytest.fixture
async def start_daemon(
    fake_server: FakeDriverServer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[RunningDaemon]]]:
    running: list[RunningDaemon] = []

    async def start(**overrides: Any) -> RunningDaemon:
        options: dict[str, Any] = {
            "token": TOKEN,
            "data_dir": tmp_path / "data",
            "ca_file": tmp_path / "ca.pem",
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "save_raw_data": False,
        }
        options.update(overrides)
        settings = DriverSettings(**options)

        def discover(*_: Any) -> Endpoint:
            return Endpoint(f"127.0.0.1:{fake_server.port}", None, "fake")

        daemon = DriverDaemon(settings, discover_fn=discover)
        handle = RunningDaemon(daemon, asyncio.create_task(daemon.run(handle_signals=False)))
        running.append(handle)
        await fake_server.wait_for(lambda: fake_server.connected, timeout=60)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.stop()
