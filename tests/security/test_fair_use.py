"""12.5: users cannot run past their balance, flood the queue or monopolise the calendar."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest

from qpi.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from tests.security.conftest import Actors
from tests.support.harness import ServerHarness
from tests.support.mini_driver import MiniDriver
from tests.support.processes import wait_until

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\nmeasure q -> c;\n'
SLOTS = "/api/collections/time_slots/records"


def _jobs(server: ServerHarness, token: str) -> list[job_pb2.Job]:
    stub = job_service_pb2_grpc.JobServiceStub(server.channel())
    return list(
        stub.ListJobs(
            job_service_pb2.ListJobsRequest(page_size=1000), metadata=server.auth(token)
        ).jobs
    )


def _balance(server: ServerHarness, user_id: str) -> float:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    reply = stub.GetUser(
        account_service_pb2.GetUserRequest(id=user_id), metadata=server.auth(server.admin_token)
    )
    return float(reply.user.qpu_seconds)


def _allocate(server: ServerHarness, user_id: str, seconds: float) -> None:
    stub = account_service_pb2_grpc.AccountServiceStub(server.channel())
    stub.UpdateUser(
        account_service_pb2.UpdateUserRequest(
            user=account_pb2.User(id=user_id, qpu_seconds=seconds),
            update_mask={"paths": ["qpu_seconds"]},
        ),
        metadata=server.auth(server.admin_token),
    )


def _count(jobs: list[job_pb2.Job], state: int) -> int:
    return sum(1 for job in jobs if job.state == state)


def test_no_user_runs_past_their_balance_while_others_flow(
    server_factory: Callable[..., ServerHarness],
) -> None:
    # 100 shots x 5 ms = 0.5 s reserved per job; the driver takes 0.5 s per job and runs
    # four at once, so without reservations every queued job of a user would run.
    server = server_factory(shot_seconds_estimate=0.005)
    alice_id, alice = server.create_user("alice@example.com", qpu_seconds=2.0)
    _, bob = server.create_user("bob@example.com", qpu_seconds=100.0)
    qpu_id, driver_token = server.register_qpu("fair")
    driver = MiniDriver(server.grpc_target, driver_token, delay=0.5, capacity=4).start()
    server.drivers.append(driver)
    assert driver.welcomed.wait(30)

    alice_jobs = [server.submit(alice, BELL, qpu=qpu_id, shots=100).id for _ in range(12)]
    bob_jobs = [server.submit(bob, BELL, qpu=qpu_id, shots=100).id for _ in range(3)]
    for job_id in bob_jobs:  # other users' jobs flow past the exhausted user's queue
        assert server.wait(bob, job_id, timeout=120).state == job_pb2.Job.STATE_COMPLETED

    def settled() -> bool:
        jobs = _jobs(server, alice)
        return _count(jobs, job_pb2.Job.STATE_RUNNING) == 0 and (
            _count(jobs, job_pb2.Job.STATE_COMPLETED) > 0
        )

    wait_until(settled, 120, "alice's dispatched jobs to finish")
    executed_before = len(driver.executed)
    time.sleep(3 * server.settings.dispatch_poll_interval)  # several dispatch sweeps
    jobs = _jobs(server, alice)
    completed = [job for job in jobs if job.state == job_pb2.Job.STATE_COMPLETED]
    assert 1 <= len(completed) <= 4  # at most 2 s / 0.5 s of the 12 ran
    assert len(driver.executed) == executed_before  # nothing more was dispatched
    assert _count(jobs, job_pb2.Job.STATE_PENDING) == 12 - len(completed)
    balance = _balance(server, alice_id)
    assert balance >= 0
    assert balance == pytest.approx(2.0 - sum(job.charged_seconds for job in jobs), abs=1e-9)

    # A top-up releases the rest; the books still balance.
    _allocate(server, alice_id, 30.0)
    for job_id in alice_jobs:
        assert server.wait(alice, job_id, timeout=120).state == job_pb2.Job.STATE_COMPLETED
    charged_after = sum(
        job.charged_seconds
        for job in _jobs(server, alice)
        if job.id not in {c.id for c in completed}
    )
    assert _balance(server, alice_id) == pytest.approx(30.0 - charged_after, abs=1e-9)


def test_queued_jobs_per_user_are_limited(
    server_factory: Callable[..., ServerHarness],
) -> None:
    server = server_factory(max_pending_per_user=3)
    _, alice = server.create_user("alice@example.com")
    qpu_id, _ = server.register_qpu("offline")  # no driver: everything stays pending
    first = [server.submit(alice, BELL, qpu=qpu_id) for _ in range(3)]
    with pytest.raises(grpc.RpcError) as refused:
        server.submit(alice, BELL, qpu=qpu_id)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "3 pending jobs" in refused.value.details()  # type: ignore[attr-defined]

    with httpx.Client(base_url=server.http_url, timeout=60) as http:
        body = {"circuits": [{"circuit": BELL}], "shots": 10, "qpu_target": qpu_id}
        over = http.post("/api/jobs", json=body, headers={"X-API-Token": alice})
        assert over.status_code == 429, over.text
        assert "most this server queues per user (3)" in over.json()["message"]
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        assert http.post("/api/jobs", json=body, headers=admin).status_code == 201
        cancelled = http.post(f"/api/jobs/{first[0].id}/cancel", headers={"X-API-Token": alice})
        assert cancelled.status_code == 200
        assert http.post("/api/jobs", json=body, headers={"X-API-Token": alice}).status_code == 201


def _slot(start: datetime, hours: float) -> dict[str, str]:
    end = start + timedelta(hours=hours)
    return {"start_time": start.isoformat(), "end_time": end.isoformat()}


def test_booking_policy_binds_users_not_administrators(actors: Actors) -> None:
    http = actors.http
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    monday = now - timedelta(days=now.weekday(), hours=now.hour) + timedelta(days=7)

    too_long = http.post(SLOTS, json=_slot(monday, 9), headers=actors.alice)
    assert too_long.status_code == 400
    assert "at most 8 h" in too_long.json()["message"]
    forever = http.post(
        SLOTS, json=_slot(datetime(2999, 1, 1, tzinfo=UTC), 1), headers=actors.alice
    )
    assert forever.status_code == 400
    assert "at most 720 h from now" in forever.json()["message"]

    for day in (0, 1):  # 16 h of the 20 h weekly allowance
        booked = http.post(SLOTS, json=_slot(monday + timedelta(days=day), 8), headers=actors.alice)
        assert booked.status_code == 200, booked.text
    third = http.post(SLOTS, json=_slot(monday + timedelta(days=2), 8), headers=actors.alice)
    assert third.status_code == 400
    assert "at most 20 h per week" in third.json()["message"]
    fits = http.post(SLOTS, json=_slot(monday + timedelta(days=2), 4), headers=actors.alice)
    assert fits.status_code == 200, fits.text
    # Moving a booking is checked the same way (the slot itself is not counted twice).
    stretched = http.patch(
        f"{SLOTS}/{fits.json()['id']}",
        json={"end_time": (monday + timedelta(days=2, hours=5)).isoformat()},
        headers=actors.alice,
    )
    assert stretched.status_code == 400
    assert "per week" in stretched.json()["message"]
    # Other users have their own allowance; administrators are exempt, even for others.
    assert (
        http.post(SLOTS, json=_slot(monday + timedelta(days=3), 8), headers=actors.bob).status_code
        == 200
    )
    for_alice = {**_slot(datetime(2999, 1, 1, tzinfo=UTC), 100), "booked_by": actors.alice_id}
    assert http.post(SLOTS, json=for_alice, headers=actors.admin).status_code == 200
