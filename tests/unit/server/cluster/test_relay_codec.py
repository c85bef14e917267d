"""What crosses replicas: small id-only messages, decoded back to what local consumers use."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from qpi.server.cluster.relay import decode, encode
from qpi.server.domain.models import Job, Qpu, Revocation
from qpi.server.services.events import EventBus
from tests.support.domain_jobs import make_job

T = datetime(2030, 1, 1, tzinfo=UTC)


def _job(result: str) -> Job:
    return make_job(id="job1", state="completed", result_json=result, attempt=1)


def test_a_job_travels_as_its_id_never_its_result() -> None:
    wire = encode("job", _job(json.dumps({"counts": "x" * 100_000})))
    assert wire == "job1"
    assert decode("job", wire) == "job1"  # the receiver re-reads it


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("cancel", Revocation("job1", 3, "driver1")),
        ("dispatch", "qpu1"),
        ("dispatch", "*"),
        ("freed", "qpu1"),  # a job ended: booking idle time on the other replicas
        ("credentials", "user1"),
        ("notification_deleted", "n1"),
    ],
)
def test_payloads_round_trip_through_json(topic: str, payload: object) -> None:
    assert decode(topic, json.loads(json.dumps(encode(topic, payload)))) == payload


def test_a_deleted_qpu_keeps_its_id_and_name() -> None:
    qpu = Qpu("qpu1", "bell", True, "online", 2, ((0, 1),), ("cx",), "mock", T, T)
    back = decode("qpu_deleted", json.loads(json.dumps(encode("qpu_deleted", qpu))))
    assert (back.id, back.name) == ("qpu1", "bell")


def test_local_only_events_are_not_relayed() -> None:
    assert encode("tick", None) is None
    assert encode("job", "not a job") is None


async def test_relayed_events_are_not_sent_back_out() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    sent: list[tuple[str, object]] = []
    bus.relay_to(lambda topic, payload: sent.append((topic, payload)))
    async with bus.subscribe() as queue:
        bus.publish("dispatch", "q1")
        bus.publish("dispatch", "q2", relayed=True)
        assert [(await queue.get()).payload for _ in range(2)] == ["q1", "q2"]
    assert sent == [("dispatch", "q1")]
