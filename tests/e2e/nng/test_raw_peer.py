"""The NNG listeners against a hand-driven pynng peer: the legacy (0.0.x) bare-JSON wire,
for which no published daemon is exercised, and input no well-behaved daemon sends
(floods, garbage, results for jobs it does not hold), plus flow control seen on the wire."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pynng
import pytest

from tests.e2e.nng.conftest import BELL, NngServer, Registered
from tests.support.processes import wait_until

pytestmark = [pytest.mark.timeout(600)]


class RawPeer:
    """A minimal NNG driver: handshake over REST, then PUSH/PULL over TLS pinned to our CA."""

    def __init__(self, server: NngServer, reg: Registered, root: Path, legacy: bool = False):
        if legacy:
            answer = server.post(
                "/api/op/qpus/connect", {"name": "raw", "access_token": reg.token}, admin=False
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            in_port, out_port = body["nng_command_port"], body["nng_result_port"]
        else:
            answer = server.post("/api/op/drivers/connect", {"token": reg.token}, admin=False)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            in_port, out_port = body["nng_in_port"], body["nng_out_port"]
        ca = root / f"ca-{reg.driver_id}.pem"
        ca.write_bytes(server.process.ca_pem)
        tls = pynng.TLSConfig(
            pynng.TLSConfig.MODE_CLIENT, server_name=body["nng_host"], ca_files=[str(ca)]
        )
        self.push = pynng.Push0(tls_config=tls, send_timeout=5000)
        self.push.dial(f"tls+tcp://{body['nng_host']}:{out_port}", block=True)
        self.pull = pynng.Pull0(tls_config=tls, recv_timeout=60_000)
        self.pull.dial(f"tls+tcp://{body['nng_host']}:{in_port}", block=True)

    def receive(self, timeout_ms: int = 60_000) -> dict[str, Any]:
        self.pull.recv_timeout = timeout_ms
        return dict(json.loads(self.pull.recv()))

    def send(self, message: object) -> None:
        self.push.send(message if isinstance(message, bytes) else json.dumps(message).encode())

    def close(self) -> None:
        self.push.close()
        self.pull.close()


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NngServer]:
    server = NngServer(tmp_path_factory.mktemp("raw"), ("--event-rate-limit", "5")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def peer_factory(limited_server: NngServer, tmp_path: Path) -> Iterator[Any]:
    peers: list[RawPeer] = []

    def make(reg: Registered, legacy: bool = False) -> RawPeer:
        peer = RawPeer(limited_server, reg, tmp_path, legacy)
        peers.append(peer)
        wait_until(
            lambda: limited_server.driver_record(reg.driver_id)["status"] == "online",
            30,
            "raw peer online",
        )
        return peer

    yield make
    for peer in peers:
        peer.close()


def _counts_result(shots: int) -> dict[str, Any]:
    counts = {"00": shots // 2, "11": shots - shots // 2}
    return {"success": True, "shots": shots, "circuit_results": [{"counts": counts}]}


def test_legacy_wire_round_trip(limited_server: NngServer, peer_factory: Any) -> None:
    server = limited_server
    reg = server.register("legacy-wire")
    peer = peer_factory(reg, legacy=True)
    token = server.user_token("legacy@example.com")
    job_id = server.submit_rest(token, BELL, reg.qpu_id, shots=64)
    dispatch = peer.receive()
    assert set(dispatch) == {"job_id", "payload"}  # no envelope on the legacy wire
    assert dispatch["job_id"] == job_id
    assert dispatch["payload"]["shots"] == 64
    assert dispatch["payload"]["qpu_target"] == reg.qpu_id
    assert dispatch["payload"]["circuits"][0]["circuit"] == BELL
    peer.send({"job_id": job_id, "results": _counts_result(64)})
    job = server.wait_job_rest(token, job_id, timeout=60)
    assert job["status"] == "completed"
    assert job["results"]["circuit_results"][0]["counts"] == {"00": 32, "11": 32}


def test_one_job_in_flight_and_failures_from_results(
    limited_server: NngServer, peer_factory: Any
) -> None:
    """Capacity 1 on the wire: the second job comes only after the first one's result."""
    server = limited_server
    reg = server.register("flow-control")
    peer = peer_factory(reg)
    token = server.user_token("flow@example.com")
    ids = [server.submit_rest(token, BELL, reg.qpu_id, shots=10) for _ in range(3)]
    first = peer.receive()
    assert first["type"] == "JobDispatch"
    assert first["driver"] == reg.driver_id
    assert first["payload"]["job_id"] == ids[0]
    with pytest.raises(pynng.Timeout):
        peer.receive(timeout_ms=2000)  # nothing else while the first is unanswered
    peer.send({"type": "JobResult", "payload": {"job_id": ids[0], "results": {"error": "boom"}}})
    second = peer.receive()
    assert second["payload"]["job_id"] == ids[1]
    failed = server.wait_job_rest(token, ids[0], timeout=60)
    assert failed["status"] == "failed"
    assert failed["results"]["error"] == "boom"
    # A duplicate of an accepted result changes nothing (exactly-once acceptance).
    peer.send({"type": "JobResult", "payload": {"job_id": ids[0], "results": _counts_result(10)}})
    peer.send({"type": "JobResult", "payload": {"job_id": ids[1], "results": _counts_result(10)}})
    assert peer.receive()["payload"]["job_id"] == ids[2]
    assert server.job_rest(token, ids[0])["status"] == "failed"
    assert server.wait_job_rest(token, ids[1], timeout=60)["status"] == "completed"


def test_garbage_and_foreign_results_are_dropped(
    limited_server: NngServer, peer_factory: Any
) -> None:
    server = limited_server
    victim = server.register("victim-qpu")
    token = server.user_token("victim@example.com")
    victim_job = server.submit_rest(token, BELL, victim.qpu_id, shots=10)  # no driver: pending
    reg = server.register("hostile")
    peer = peer_factory(reg)
    for junk in (b"\x00\xff", b"[]", b'{"type": "Bogus"}', b'{"type": "JobResult"}'):
        peer.send(junk)
    peer.send({"type": "JobResult", "payload": {"job_id": victim_job, "results": {"counts": {}}}})
    peer.send({"job_id": victim_job, "results": {"error": "spoofed"}})
    # The channel still works afterwards, and the victim's job was never touched.
    mine = server.submit_rest(token, BELL, reg.qpu_id, shots=10)
    dispatch = peer.receive()
    assert dispatch["payload"]["job_id"] == mine
    peer.send({"type": "JobResult", "payload": {"job_id": mine, "results": _counts_result(10)}})
    assert server.wait_job_rest(token, mine, timeout=60)["status"] == "completed"
    assert server.job_rest(token, victim_job)["status"] == "pending"


def test_cryostat_readings_are_stored_within_the_rate_limit(
    limited_server: NngServer, peer_factory: Any
) -> None:
    server = limited_server
    reg = server.register("fridge", kind="bluefors_gen1")
    peer = peer_factory(reg)
    readings = {
        "mapper.bf.tmc": {"value": 0.0123, "unit": "K", "status": "SYNCHRONIZED"},
        "mapper.bf.pmc": {"value": None, "unit": "mbar", "status": "ERROR"},
    }
    for _ in range(40):
        peer.send({"type": "CryostatReading", "ts": "2026-11-24T00:41:04.559Z",
                   "payload": {"readings": readings}})  # fmt: skip
    peer.send({"type": "CryostatReading", "payload": {"readings": {}}})  # rejected: empty

    def stored() -> list[dict[str, Any]]:
        answer = server.get(
            f"/api/collections/events/records?filter=(driver='{reg.driver_id}')&perPage=100"
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    wait_until(stored, 30, "telemetry stored")
    time.sleep(2)  # let the rest of the burst be handled (or dropped)
    events = stored()
    assert 1 <= len(events) <= 15  # burst of 5 plus refills at 5/s, far below 40
    event = events[0]
    assert (event["type"], event["qpu"], event["driver"]) == (
        "CryostatReading",
        reg.qpu_id,
        reg.driver_id,
    )
    assert event["payload"] == {"readings": readings}
    assert event["ts"].startswith("2026-11-24 00:41:04")
    # A monitor never receives jobs, and does not make its QPU accept them.
    assert server.qpu(reg.qpu_id)["status"] == "offline"


def test_booking_priority_decides_what_the_driver_gets_next(
    limited_server: NngServer, peer_factory: Any
) -> None:
    """The NNG driver sits behind the same scheduler: the booker's later job goes first."""
    server = limited_server
    reg = server.register("booked")
    peer = peer_factory(reg)
    alice = server.user_token("alice@example.com")
    bob = server.user_token("bob@example.com")
    bob_id = server.http.get(
        f"{server.url}/api/collections/users/records", headers={"X-API-Token": bob}
    ).json()["items"][0]["id"]
    busy = server.submit_rest(alice, BELL, reg.qpu_id, shots=10)
    assert peer.receive()["payload"]["job_id"] == busy  # the driver's only slot is taken
    now = datetime.now(UTC)
    slot = server.post(
        "/api/collections/time_slots/records",
        {
            "start_time": _pb_time(now - timedelta(minutes=1)),
            "end_time": _pb_time(now + timedelta(minutes=10)),
            "booked_by": bob_id,
            "qpu": reg.qpu_id,
        },
    )
    assert slot.status_code == 200, slot.text
    alice_job = server.submit_rest(alice, BELL, reg.qpu_id, shots=10)
    bob_job = server.submit_rest(bob, BELL, reg.qpu_id, shots=10)
    peer.send({"type": "JobResult", "payload": {"job_id": busy, "results": _counts_result(10)}})
    assert peer.receive()["payload"]["job_id"] == bob_job
    peer.send({"type": "JobResult", "payload": {"job_id": bob_job, "results": _counts_result(10)}})
    assert peer.receive(timeout_ms=60_000)["payload"]["job_id"] == alice_job


def _pb_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
