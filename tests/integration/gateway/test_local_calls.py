"""The gateway's in-process calls answer, and fail, exactly as the same calls over the
channel: same response messages, same REST error (status, envelope, reason, headers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from qpi.gateway import errors, rpc
from qpi.server.rpc.credentials import CLIENT_ADDRESS_KEY, client_address
from qpi.server.rpc.local import _LocalContext
from qpi.v1 import account_service_pb2, job_service_pb2
from tests.support.harness import ServerHarness

Call = Callable[[rpc.Stubs], Awaitable[Any]]


def _both(server: ServerHarness, call: Call) -> tuple[Any, Any]:
    """`call` on stubs answered in process and on channel-only stubs; each outcome is the
    response or the ApiError raised."""

    async def run() -> tuple[Any, Any]:
        channel = grpc.aio.insecure_channel(server.server._gateway_target)
        try:
            outcomes = []
            for local in (server.server._local_calls, None):
                try:
                    outcomes.append(await call(rpc.Stubs.for_channel(channel, local)))
                except errors.ApiError as exc:
                    outcomes.append(exc)
            return outcomes[0], outcomes[1]
        finally:
            await channel.close()

    return asyncio.run_coroutine_threadsafe(run(), server._loop).result(30)


def _token(server: ServerHarness) -> rpc.Metadata:
    return rpc.bearer_metadata(server.admin_token)


def test_answers_are_the_same_messages(qpi_server: ServerHarness) -> None:
    qpi_server.register_qpu("q1")  # no driver: the job stays pending between the two reads
    _, user_token = qpi_server.create_user("a@example.com")
    job = qpi_server.submit(user_token, "OPENQASM 2.0;\nqreg q[1];\n", qpu="q1")

    for call in (
        lambda s: rpc.call(
            s.accounts.GetCurrentUser,
            account_service_pb2.GetCurrentUserRequest(),
            _token(qpi_server),
        ),
        lambda s: rpc.call(
            s.jobs.GetJob, job_service_pb2.GetJobRequest(id=job.id), _token(qpi_server)
        ),
    ):
        local, remote = _both(qpi_server, call)
        assert not isinstance(local, Exception), local
        assert local == remote


@pytest.mark.parametrize(
    ("call", "status"),
    [
        # Not found, with the admin's credentials.
        (
            lambda token: (
                lambda s: rpc.call(
                    s.jobs.GetJob, job_service_pb2.GetJobRequest(id="nosuchjob000000"), token
                )
            ),
            404,
        ),
        # No credentials at all.
        (
            lambda token: (
                lambda s: rpc.call(
                    s.accounts.GetCurrentUser, account_service_pb2.GetCurrentUserRequest(), ()
                )
            ),
            401,
        ),
        # A field the server refuses (NUL character), checked by the shared translator.
        (
            lambda token: (
                lambda s: rpc.call(s.jobs.GetJob, job_service_pb2.GetJobRequest(id="a\x00b"), token)
            ),
            400,
        ),
    ],
)
def test_failures_are_the_same_rest_errors(
    qpi_server: ServerHarness, call: Callable[[rpc.Metadata], Call], status: int
) -> None:
    local, remote = _both(qpi_server, call(_token(qpi_server)))
    assert isinstance(local, errors.ApiError), local
    assert isinstance(remote, errors.ApiError), remote
    assert local.status == status
    assert (local.status, local.envelope(), local.reason, local.headers) == (
        remote.status,
        remote.envelope(),
        remote.reason,
        remote.headers,
    )


def test_streams_still_use_the_channel(qpi_server: ServerHarness) -> None:
    async def stubs() -> tuple[Any, Any]:
        channel = grpc.aio.insecure_channel(qpi_server.server._gateway_target)
        local = rpc.Stubs.for_channel(channel, qpi_server.server._local_calls)
        out = (type(local.events.Subscribe), type(local.jobs.GetJob))
        await channel.close()
        return out

    subscribe, get_job = asyncio.run_coroutine_threadsafe(stubs(), qpi_server._loop).result(30)
    assert issubclass(subscribe, grpc.aio.UnaryStreamMultiCallable)
    assert get_job is rpc._LocalMethod


def test_the_client_address_the_gateway_forwards_in_process_is_trusted() -> None:
    forwarded = ((CLIENT_ADDRESS_KEY, "203.0.113.9"),)
    assert client_address(_LocalContext(forwarded)) == "203.0.113.9"  # type: ignore[arg-type]
