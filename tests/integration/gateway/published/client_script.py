"""Runs inside the published qpi-client 0.4.2 venv against a live QPI server.

Usage: python client_script.py <url> <json config>. Prints "OK" at the end; any failure
raises (non-zero exit).
"""

import json
import sys
from datetime import UTC, datetime, timedelta

from qiskit import QuantumCircuit
from qpi_client import QPIClient
from qpi_client.provider import QPIJob

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def at(minutes):
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def main():
    url, cfg = sys.argv[1], json.loads(sys.argv[2])
    user = QPIClient(url, api_token=cfg["api_token"])
    admin = QPIClient(url)
    admin.auth_with_password(cfg["admin_email"], cfg["admin_password"])

    # QPUs (the "sim" QPU has a connected executing driver).
    names = {q["name"] for q in user.list_qpus()}
    assert "sim" in names, names
    sim = user.get_qpu("sim")
    assert sim["num_qubits"] == 4, sim
    assert sim["status"] == "online", sim
    created = admin.create_qpu("spare", executor_type="mock", num_qubits=2)
    assert created["name"] == "spare", created
    assert created["id"], created
    toggled = admin.toggle_qpu(created["id"], False)
    assert toggled["enabled"] is False, toggled
    admin.toggle_qpu(created["id"], True)

    # Jobs, with and without qpu_target.
    targeted = user.submit_job([{"circuit": BELL}], shots=100, qpu_target=sim["id"])
    routed = user.submit_job([{"circuit": BELL}], shots=100)
    backend = user.get_backend("sim")
    for job_id in (targeted, routed):
        result = QPIJob(backend, job_id, user).result(timeout=60, wait=0.2)
        counts = {
            int(k, 16) if str(k).startswith("0x") else int(k, 2): v
            for k, v in result.get_counts().items()
        }
        assert sum(counts.values()) == 100, counts
        assert {k for k, v in counts.items() if v} <= {0, 3}, counts
        assert user.get_job(job_id)["status"] == "completed"
    assert {targeted, routed} <= {j["id"] for j in user.list_jobs()}
    pending = user.submit_job([{"circuit": BELL}], qpu_target="spare")
    assert user.cancel_job(pending) == {"status": "cancelled"}
    assert user.get_job(pending)["status"] == "cancelled"

    # Qiskit backend by name.
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    counts = user.get_backend("sim").run(circuit, shots=100).result(wait=0.2).get_counts()
    as_ints = {int(k, 0) if str(k).startswith("0x") else int(k, 2): v for k, v in counts.items()}
    assert sum(as_ints.values()) == 100, counts
    assert {k for k, v in as_ints.items() if v} <= {0, 3}, counts

    # Collection helpers need a session: the user signs in too.
    user.auth_with_password(cfg["user_email"], cfg["user_password"])
    slot = user.create_time_slot(at(60), at(90))
    assert slot["booked_by"] == cfg["user_id"], slot
    assert slot["id"] in {s["id"] for s in user.list_time_slots()}
    moved = user.update_time_slot(slot["id"], end_time=at(100))
    assert moved["end_time"] > slot["end_time"], moved
    user.delete_time_slot(slot["id"])

    request = user.create_time_request(300, requested_reason="compat")
    assert request["status"] == "pending", request
    assert request["id"] in {r["id"] for r in user.list_time_requests()}
    before = next(u for u in admin.list_users() if u["id"] == cfg["user_id"])["qpu_seconds"]
    approved = admin.update_time_request(request["id"], "approved")
    assert approved["status"] == "approved", approved
    after = next(u for u in admin.list_users() if u["id"] == cfg["user_id"])["qpu_seconds"]
    assert abs(after - before - 300) < 0.01, (before, after)
    allocated = admin.allocate_qpu_time(cfg["user_id"], 5000)
    assert allocated["qpu_seconds"] == 5000, allocated

    note = admin._session.post(
        f"{url}/api/collections/notifications/records", json={"title": "compat"}
    )
    note.raise_for_status()
    listed = user.list_notifications()
    assert note.json()["id"] in {n["id"] for n in listed}, listed
    assert user.dismiss_notification(note.json()["id"]) == {"status": "dismissed"}
    assert note.json()["id"] not in {n["id"] for n in user.list_notifications()}

    # API tokens through the documented routes.
    tok = user._session.post(f"{url}/api/tokens", json={"name": "compat"})
    tok.raise_for_status()
    fresh = QPIClient(url, api_token=tok.json()["token"])
    assert isinstance(fresh.list_jobs(), list)
    user._session.delete(f"{url}/api/tokens/{tok.json()['id']}").raise_for_status()
    print("OK")


if __name__ == "__main__":
    main()
