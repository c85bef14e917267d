"""Driver registration, the drivers/events collections and the driver switch over REST."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from qpi.v1 import driver_service_pb2 as pb
from tests.integration.gateway.conftest import Rest, envelope
from tests.support.raw_stream import RawStream

DRIVERS = "/api/collections/drivers/records"
EVENTS = "/api/collections/events/records"


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _register(rest: Rest, qpu_name: str = "fridge", **overrides: object) -> dict:
    qpu = rest.http.post("/api/op/qpus/create", json={"name": qpu_name}, headers=rest.admin)
    assert qpu.status_code == 201, qpu.text
    body = {"name": "drv", "qpu": qpu.json()["id"], "kind": "mock", "language": "python"}
    created = rest.http.post(
        "/api/op/drivers/create", json={**body, **overrides}, headers=rest.admin
    )
    assert created.status_code == 201, created.text
    return created.json()


def test_driver_create_returns_token_fingerprint_and_snippets_once(rest: Rest) -> None:
    driver = _register(rest)
    assert driver["token"].startswith("qpi_")
    assert driver["status"] == "offline"
    assert driver["enabled"] is True
    assert driver["qpi_addr"] == rest.server.http_url
    assert driver["ca_fingerprint"] == rest.server.ca_fingerprint
    cli = driver["snippets"]["manual_cli"]
    assert "qpi-driver start" in cli
    assert driver["token"] in cli
    assert "--executor mock" in cli
    assert "install-systemd" in driver["snippets"]["systemd"]
    listed = rest.http.get(DRIVERS, params={"expand": "qpu"}, headers=rest.admin).json()["items"]
    mine = next(d for d in listed if d["id"] == driver["id"])
    assert "token" not in mine
    assert mine["expand"]["qpu"]["name"] == "fridge"
    viewed = rest.http.get(f"{DRIVERS}/{driver['id']}", headers=rest.admin).json()
    assert "token" not in viewed
    custom = _register(rest, "lab", kind="custom")
    assert set(custom["snippets"]) == {"install", "stub"}


def test_driver_create_rejects_bad_input_and_non_admins(rest: Rest) -> None:
    qpu = rest.http.post("/api/op/qpus/create", json={"name": "q"}, headers=rest.admin).json()
    body = {"name": "d", "qpu": qpu["id"], "kind": "mock", "language": "python"}
    bad_kind = rest.http.post(
        "/api/op/drivers/create", json={**body, "kind": "toaster"}, headers=rest.admin
    )
    assert "kind" in envelope(bad_kind, 400)["message"]
    bad_language = rest.http.post(
        "/api/op/drivers/create", json={**body, "language": "cobol"}, headers=rest.admin
    )
    assert "language" in envelope(bad_language, 400)["message"]
    unknown_qpu = rest.http.post(
        "/api/op/drivers/create", json={**body, "qpu": "nope"}, headers=rest.admin
    )
    envelope(unknown_qpu, 404)
    envelope(rest.http.post("/api/op/drivers/create", json=body, headers=rest.a), 403)
    envelope(rest.http.post("/api/op/drivers/create", json=body), 401, 403)
    envelope(rest.http.get(DRIVERS, headers=rest.a), 403)
    envelope(rest.http.get(EVENTS, headers=rest.a), 403)
    listed = rest.http.get(DRIVERS, headers=rest.admin).json()["items"]
    assert [d["name"] for d in listed] == ["q-driver"]  # only the QPU's own first driver


def test_toggle_disconnects_and_collection_edits(rest: Rest) -> None:
    driver = _register(rest)
    stream = RawStream(rest.server, driver["token"], [])
    try:
        stream.next("welcome")

        def status() -> str:
            return rest.http.get(f"{DRIVERS}/{driver['id']}", headers=rest.admin).json()["status"]

        _until(lambda: status() == "online")
        off = rest.http.post(
            "/api/op/drivers/toggle",
            json={"id": driver["id"], "enabled": False},
            headers=rest.admin,
        )
        assert off.status_code == 200, off.text
        assert off.json()["enabled"] is False
        _until(lambda: status() == "offline", 3.0)
        envelope(
            rest.http.post(
                "/api/op/drivers/toggle", json={"id": driver["id"], "enabled": True}, headers=rest.a
            ),
            403,
        )
        on = rest.http.post(
            "/api/op/drivers/toggle", json={"id": driver["id"], "enabled": True}, headers=rest.admin
        )
        assert on.json()["enabled"] is True
    finally:
        stream.close()
    url = f"{DRIVERS}/{driver['id']}"
    renamed = rest.http.patch(url, json={"name": "fridge-monitor"}, headers=rest.admin)
    assert renamed.json()["name"] == "fridge-monitor"
    assert (
        "kind"
        in envelope(rest.http.patch(url, json={"kind": "qblox"}, headers=rest.admin), 400)["data"]
    )
    envelope(rest.http.delete(url, headers=rest.a), 403)
    assert rest.http.delete(url, headers=rest.admin).status_code == 204
    envelope(rest.http.get(url, headers=rest.admin), 404)


def test_events_collection_pages_newest_first(rest: Rest) -> None:
    driver = _register(rest, kind="bluefors_gen1")
    stream = RawStream(rest.server, driver["token"], [])
    try:
        stream.next("welcome")
        for i in range(5):
            payload = json.dumps({"readings": {"mapper.bf.tmc": {"value": i, "unit": "K"}}})
            stream.out.put(
                pb.ConnectRequest(
                    telemetry=pb.TelemetryReport(type="CryostatReading", payload_json=payload)
                )
            )
            time.sleep(0.01)  # distinct timestamps
        stream.out.put(
            pb.ConnectRequest(telemetry=pb.TelemetryReport(type="Other", payload_json="{}"))
        )

        def total() -> int:
            resp = rest.http.get(EVENTS, params={"perPage": "1"}, headers=rest.admin)
            return int(resp.json()["totalItems"])

        _until(lambda: total() == 6)
    finally:
        stream.close()
    params = {"filter": 'type="CryostatReading"', "sort": "-ts", "perPage": "2", "expand": "driver"}
    first = rest.http.get(EVENTS, params=params, headers=rest.admin).json()
    assert first["totalItems"] == 5
    assert first["totalPages"] == 3
    values = [e["payload"]["readings"]["mapper.bf.tmc"]["value"] for e in first["items"]]
    assert values == [4, 3]
    assert first["items"][0]["expand"]["driver"]["id"] == driver["id"]
    assert first["items"][0]["qpu"] == driver["qpu"]
    last = rest.http.get(EVENTS, params={**params, "page": "3"}, headers=rest.admin).json()
    assert [e["payload"]["readings"]["mapper.bf.tmc"]["value"] for e in last["items"]] == [0]
    one = rest.http.get(f"{EVENTS}/{first['items'][0]['id']}", headers=rest.admin).json()
    assert one["type"] == "CryostatReading"
    envelope(rest.http.get(f"{EVENTS}/missing", headers=rest.admin), 404)
    envelope(rest.http.delete(f"{EVENTS}/{one['id']}", headers=rest.admin), 403, 405)
