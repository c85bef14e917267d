"""Fixtures for the driver daemon against the real `qpi serve` (both as subprocesses).

One TLS server is shared by the module (it takes several seconds to start); tests that stop
the server get their own through `own_server`. Every process is stopped by a finalizer,
whatever the test's outcome.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import DriverProcess, ServeProcess

_names = itertools.count()

LaunchDriver = Callable[..., DriverProcess]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A `qpi serve` subprocess with TLS, shared by the module."""
    server = ServeProcess(tmp_path_factory.mktemp("serve")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def user_token(serve: ServeProcess) -> str:
    """An API token of a user with a QPU-seconds balance on the shared server."""
    return serve.create_user("e2e-user@example.com")


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServeProcess]:
    """A private `qpi serve` for tests that stop or restart it."""
    server = ServeProcess(tmp_path / "own").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def launch_driver(tmp_path: Path) -> Iterator[LaunchDriver]:
    """Registers a QPU and starts a connected driver for it; every driver is stopped after.

    Call as ``launch_driver(server, executor="mock", num_qubits=8)``; pass ``token=`` and
    ``name=`` to start another daemon for an existing QPU (e.g. after killing one).
    """
    started: list[DriverProcess] = []

    def launch(
        server: ServeProcess,
        *,
        executor: str = "mock",
        num_qubits: int = 8,
        name: str | None = None,
        token: str | None = None,
        wait: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> DriverProcess:
        name = name or f"e2e_{executor}_{next(_names)}"
        if token is None:
            token = server.create_qpu(name, num_qubits=num_qubits)
        driver = DriverProcess(
            server, token, tmp_path, name=name, executor=executor, extra_args=extra_args
        )
        started.append(driver)
        driver.start()
        if wait:
            # The worker warms its executor up before the driver goes online.
            driver.wait_connected(timeout=180)
        return driver

    yield launch
    for driver in started:
        driver.terminate(grace=5)
