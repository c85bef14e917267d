"""12.7: the users collection's visibility rules apply to expanded records everywhere.

E-mails are never public (``emailVisibility`` is false): only the account's owner and
administrators may see one, whether by reading the user, expanding a relation or through
the display fields of gRPC messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from qpi.gateway.collections.base import Collection
from qpi.gateway.config import GatewayConfig
from qpi.gateway.routes.collections import build_registry
from qpi.v1 import booking_service_pb2, booking_service_pb2_grpc
from tests.security.conftest import Actors

ALICE = "alice@example.com"
BOB = "bob@example.com"
BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\nmeasure q -> c;\n'


def _slot_times(hours_ahead: int) -> dict[str, str]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours_ahead)
    return {"start_time": start.isoformat(), "end_time": (start + timedelta(hours=1)).isoformat()}


def _seed(actors: Actors) -> dict[str, Any]:
    """Records of every collection that relate to alice (and a booking of bob's)."""
    http, server = actors.http, actors.server
    qpu_id = server.create_qpu("privacy-qpu")
    job = server.submit(actors.alice["X-API-Token"], BELL, qpu=qpu_id)
    server.wait(actors.alice["X-API-Token"], job.id)
    alice_slot = http.post(
        "/api/collections/time_slots/records",
        json={**_slot_times(2), "qpu": qpu_id},
        headers=actors.alice,
    )
    bob_slot = http.post(
        "/api/collections/time_slots/records", json=_slot_times(5), headers=actors.bob
    )
    request = http.post(
        "/api/collections/qpu_time_requests/records",
        json={"seconds": 5, "requested_reason": "calibration"},
        headers=actors.alice,
    )
    note = http.post(
        "/api/collections/notifications/records",
        json={"title": "hello", "target_users": [actors.alice_id, actors.bob_id]},
        headers=actors.admin,
    )
    for response in (alice_slot, bob_slot, request, note):
        assert response.status_code == 200, response.text
    return {"qpu": qpu_id, "alice_slot": alice_slot.json()["id"], "bob_slot": bob_slot.json()}


def _collections() -> dict[str, Collection]:
    return {
        name: c
        for name, c in build_registry(GatewayConfig(grpc_target="unused")).items()
        if c.relations
    }


def test_every_expandable_relation_hides_other_users_emails(actors: Actors) -> None:
    _seed(actors)
    collections = _collections()
    assert {"time_slots", "quantum_jobs", "qpu_time_requests", "api_tokens"} <= set(collections)
    for name, collection in collections.items():
        expand = ",".join(collection.relations)
        url = f"/api/collections/{name}/records"
        as_bob = actors.http.get(url, params={"expand": expand}, headers=actors.bob)
        assert as_bob.status_code in (200, 403), (name, as_bob.text)
        assert ALICE not in as_bob.text, (name, as_bob.text)
        for item in as_bob.json().get("items", []):
            single = actors.http.get(
                f"{url}/{item['id']}", params={"expand": expand}, headers=actors.bob
            )
            assert single.status_code == 200, (name, single.text)
            assert ALICE not in single.text, (name, single.text)
        # Administrators still see every relation in full.
        as_admin = actors.http.get(url, params={"expand": expand}, headers=actors.admin)
        assert as_admin.status_code == 200, (name, as_admin.text)


def test_booked_by_expands_only_for_the_booker_and_administrators(actors: Actors) -> None:
    seeded = _seed(actors)
    url = "/api/collections/time_slots/records"
    params = {"expand": "booked_by,qpu", "sort": "start_time"}
    items = {
        i["id"]: i for i in actors.http.get(url, params=params, headers=actors.bob).json()["items"]
    }
    alice_slot = items[seeded["alice_slot"]]
    assert alice_slot["booked_by"] == actors.alice_id  # the relation id stays visible
    assert "booked_by" not in alice_slot["expand"]  # the account itself does not
    assert alice_slot["expand"]["qpu"]["id"] == seeded["qpu"]  # QPUs are public
    own = items[seeded["bob_slot"]["id"]]
    assert own["expand"]["booked_by"]["email"] == BOB

    by_admin = actors.http.get(url, params=params, headers=actors.admin).json()["items"]
    emails = {i["expand"]["booked_by"]["email"] for i in by_admin}
    assert emails == {ALICE, BOB}


def test_grpc_booking_messages_carry_only_visible_emails(actors: Actors) -> None:
    seeded = _seed(actors)
    stub = booking_service_pb2_grpc.BookingServiceStub(actors.server.channel())
    listed = stub.ListTimeSlots(
        booking_service_pb2.ListTimeSlotsRequest(),
        metadata=actors.server.auth(actors.bob["X-API-Token"]),
    ).time_slots
    shown = {slot.id: slot.user_email for slot in listed}
    assert shown[seeded["alice_slot"]] == ""
    assert shown[seeded["bob_slot"]["id"]] == BOB
    one = stub.GetTimeSlot(
        booking_service_pb2.GetTimeSlotRequest(id=seeded["alice_slot"]),
        metadata=actors.server.auth(actors.bob["X-API-Token"]),
    ).time_slot
    assert one.user_email == ""
    admin_view = stub.ListTimeSlots(
        booking_service_pb2.ListTimeSlotsRequest(),
        metadata=actors.server.auth(actors.server.admin_token),
    ).time_slots
    assert {slot.user_email for slot in admin_view} == {ALICE, BOB}
