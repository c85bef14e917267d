"""Custom REST routes against a real server (§4.2, §12 items 2–4, 7, 13)."""

from __future__ import annotations

import hashlib
import ssl
import time

from tests.integration.gateway.conftest import Rest, envelope

JOB_KEYS = {"id", "user_id", "qpu_target", "payload", "status", "created", "updated"}


def wait_job(rest: Rest, job_id: str, headers: dict[str, str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rest.http.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_public_routes(rest: Rest) -> None:
    pem = rest.http.get("/api/pub/root-ca.pem")
    assert pem.status_code == 200
    assert pem.headers["content-type"].startswith("application/x-pem-file")
    assert pem.text.startswith("-----BEGIN CERTIFICATE-----")
    der = ssl.PEM_cert_to_DER_cert(pem.text)
    info = rest.http.get("/api/pub/server-info").json()
    assert set(info) == {"version", "grpc_port", "grpc_tls", "ca_fingerprint"}
    assert info["ca_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert info["grpc_port"] == rest.server.grpc_port


def test_job_lifecycle_charges_balance_and_returns_real_results(rest: Rest, bell_qasm: str) -> None:
    qpu_id = rest.server.create_qpu("sim", 4)
    body = {
        "circuits": [{"circuit": bell_qasm}],
        "shots": 200,
        "meas_level": 2,
        "meas_return": "single",
        "qpu_target": qpu_id,
    }
    created = rest.http.post("/api/jobs", json=body, headers=rest.a)
    assert created.status_code == 201, created.text
    job = created.json()
    assert set(job) >= JOB_KEYS
    # Queued, or already leased to the idle driver by the submit itself.
    assert job["status"] in ("pending", "running")
    assert job["payload"]["qpu_target"] == qpu_id
    done = wait_job(rest, job["id"], rest.a)
    assert done["status"] == "completed"
    counts = done["results"]["circuit_results"][0]["counts"]
    assert sum(counts.values()) == 200
    assert {k for k, v in counts.items() if v} <= {"00", "11"}
    assert done["finished_at"].endswith("Z")
    # §12.2: balance deducted.
    assert rest.balance(rest.a_id) < 1000
    # §12.3: API-token auth on list and get; Authorization: Bearer <api token> works too.
    listing = rest.http.get("/api/jobs", headers=rest.a)
    assert [j["id"] for j in listing.json()] == [job["id"]]
    bearer = {"Authorization": f"Bearer {rest.a['X-API-Token']}"}
    assert rest.http.get(f"/api/jobs/{job['id']}", headers=bearer).status_code == 200
    # Other users cannot see it.
    envelope(rest.http.get(f"/api/jobs/{job['id']}", headers=rest.b), 404)
    assert rest.http.get("/api/jobs", headers=rest.b).json() == []
    # Untargeted job is routed by the server.
    untargeted = rest.http.post(
        "/api/jobs", json={"circuits": [{"circuit": bell_qasm}]}, headers=rest.a
    ).json()
    assert wait_job(rest, untargeted["id"], rest.a)["qpu_target"] == qpu_id
    # sort / skip / limit on the bare list.
    ids = [j["id"] for j in rest.http.get("/api/jobs?sort=created", headers=rest.a).json()]
    assert ids == [job["id"], untargeted["id"]]
    assert len(rest.http.get("/api/jobs?skip=1&limit=1", headers=rest.a).json()) == 1


def test_failed_job_reports_error(rest: Rest) -> None:
    rest.server.create_qpu("sim", 4)
    created = rest.http.post(
        "/api/jobs", json={"circuits": [{"circuit": "OPENQASM 2.0; bogus"}]}, headers=rest.a
    )
    if created.status_code == 400:  # rejected at submit (server validates QASM)
        envelope(created, 400)
        return
    done = wait_job(rest, created.json()["id"], rest.a)
    assert done["status"] == "failed"
    assert done["results"]["error"]


def test_cancel_job(rest: Rest, bell_qasm: str) -> None:
    """§12.7, on a QPU without a driver so the job stays pending."""
    rest.server.register_qpu("idle", 2)
    job = rest.http.post(
        "/api/jobs",
        json={"circuits": [{"circuit": bell_qasm}], "qpu_target": "idle"},
        headers=rest.a,
    ).json()
    envelope(rest.http.post(f"/api/jobs/{job['id']}/cancel", headers=rest.b), 404)
    resp = rest.http.post(f"/api/jobs/{job['id']}/cancel", headers=rest.a)
    assert resp.json() == {"status": "cancelled"}
    assert rest.http.get(f"/api/jobs/{job['id']}", headers=rest.a).json()["status"] == "cancelled"
    again = envelope(rest.http.post(f"/api/jobs/{job['id']}/cancel", headers=rest.a), 404)
    assert again["message"] == "Job not found, maybe it was already completed or cancelled?"


def test_insufficient_balance(rest: Rest, bell_qasm: str) -> None:
    _, token = rest.server.create_user(
        "poor@example.com", password="poorpassword1234", qpu_seconds=0.0
    )
    rest.server.register_qpu("idle", 2)
    resp = rest.http.post(
        "/api/jobs",
        json={"circuits": [{"circuit": bell_qasm}], "qpu_target": "idle"},
        headers={"X-API-Token": token},
    )
    assert envelope(resp, 403)["message"] == "Insufficient QPU seconds balance."
    assert rest.http.get("/api/jobs", headers={"X-API-Token": token}).json() == []


def test_admin_allocates_seconds(rest: Rest) -> None:
    """§12.4 through both the documented route and the collection API."""
    before = rest.balance(rest.a_id)
    resp = rest.http.patch(
        f"/api/admin/users/{rest.a_id}", json={"qpu_seconds": before + 500}, headers=rest.admin
    )
    assert resp.status_code == 200, resp.text
    assert abs(resp.json()["qpu_seconds"] - (before + 500)) < 0.01
    envelope(
        rest.http.patch(f"/api/admin/users/{rest.a_id}", json={"qpu_seconds": 1e9}, headers=rest.a),
        403,
    )
    envelope(
        rest.http.patch(
            f"/api/collections/users/records/{rest.a_id}",
            json={"qpu_seconds": 1e9},
            headers=rest.a_session,
        ),
        403,
    )
    resp = rest.http.patch(
        f"/api/collections/users/records/{rest.a_id}", json={"qpu_seconds": 42}, headers=rest.admin
    )
    assert resp.json()["qpu_seconds"] == 42
    assert rest.balance(rest.a_id) == 42


def test_qpus_routes_and_admin_ops(rest: Rest) -> None:
    envelope(rest.http.post("/api/op/qpus/create", json={"name": "x"}), 403)
    envelope(rest.http.post("/api/op/qpus/create", json={"name": "x"}, headers=rest.a), 403)
    envelope(rest.http.post("/api/op/qpu/toggle", headers=rest.a), 403)
    assert rest.http.get("/api/op/version", headers=rest.admin).json()["version"]
    created = rest.http.post(
        "/api/op/qpus/create",
        json={"name": "SnippetTestQPU", "num_qubits": 5, "executor_type": "mock"},
        headers=rest.admin,
    )
    assert created.status_code == 201, created.text
    qpu = created.json()
    assert set(qpu) == {
        "id",
        "name",
        "status",
        "enabled",
        "num_qubits",
        "access_token",
        "ca_fingerprint",
        "driver_id",
        "driver_name",
        "driver_kind",
        "qpi_addr",
        "driver_version",
        "snippets",
    }
    assert qpu["access_token"].startswith("qpi_")
    # 11.11: what a lab pastes, built like /api/op/drivers/create builds it.
    assert qpu["qpi_addr"] == rest.server.http_url
    assert qpu["driver_kind"] == "mock"
    start = qpu["snippets"]["manual_cli"].splitlines()[-1]
    assert start.startswith("qpi-driver start ")
    for part in (qpu["access_token"], qpu["ca_fingerprint"], "--executor mock", qpu["qpi_addr"]):
        assert part in start
    assert f"--name {qpu['driver_name']}" in start
    assert "qpi-driver install-systemd" in qpu["snippets"]["systemd"]
    assert qpu["access_token"] in qpu["snippets"]["systemd"]
    qblox = rest.http.post(
        "/api/op/qpus/create",
        json={"name": "fridge", "executor_type": "qblox"},
        headers=rest.admin,
    ).json()
    assert qblox["driver_kind"] == "qblox"
    assert "--executor qblox" in qblox["snippets"]["manual_cli"]
    assert "qpi-driverd[qblox]" in qblox["snippets"]["manual_cli"]
    assert qpu["status"] == "offline"
    envelope(
        rest.http.post("/api/op/qpus/create", json={"name": "SnippetTestQPU"}, headers=rest.admin),
        409,
    )
    by_name = rest.http.get("/api/qpus/SnippetTestQPU", headers=rest.a).json()
    by_id = rest.http.get(f"/api/qpus/{qpu['id']}", headers=rest.a).json()
    assert by_name == by_id
    assert by_name["num_qubits"] == 5
    envelope(rest.http.get("/api/qpus/nope", headers=rest.a), 404)
    toggled = rest.http.post(
        "/api/op/qpu/toggle", json={"id": "SnippetTestQPU", "enabled": False}, headers=rest.admin
    ).json()
    assert toggled == {
        "id": qpu["id"],
        "name": "SnippetTestQPU",
        "enabled": False,
        "status": "offline",
    }
    envelope(
        rest.http.post(
            "/api/op/qpu/toggle", json={"id": "nope", "enabled": True}, headers=rest.admin
        ),
        404,
    )
    online_id = rest.server.create_qpu("live", 2)
    names = {q["name"] for q in rest.http.get("/api/qpus", headers=rest.a).json()}
    assert names == {"SnippetTestQPU", "fridge", "live"}
    online = rest.http.get("/api/qpus?online=1", headers=rest.a).json()
    assert [q["id"] for q in online] == [online_id]


def test_tokens_routes(rest: Rest) -> None:
    created = rest.http.post(
        "/api/tokens", json={"name": "ci", "expires_at": "2099-01-01 00:00:00Z"}, headers=rest.a
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert token["token"].startswith("qpi_")
    assert token["expires_at"] == "2099-01-01 00:00:00.000Z"
    new_auth = {"X-API-Token": token["token"]}
    assert rest.http.get("/api/jobs", headers=new_auth).status_code == 200
    listed = rest.http.get("/api/tokens", headers=rest.a).json()
    assert token["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    envelope(rest.http.get(f"/api/tokens/{token['id']}", headers=rest.b), 404, 403)
    envelope(
        rest.http.patch(f"/api/tokens/{token['id']}", json={"name": "x"}, headers=rest.b), 404, 403
    )
    patched = rest.http.patch(
        f"/api/tokens/{token['id']}", json={"name": "renamed"}, headers=rest.a
    ).json()
    assert patched["name"] == "renamed"
    assert patched["expires_at"] == "2099-01-01 00:00:00.000Z"
    envelope(rest.http.delete(f"/api/tokens/{token['id']}", headers=rest.b), 404, 403)
    assert rest.http.delete(f"/api/tokens/{token['id']}", headers=rest.a).json() == {
        "status": "deleted"
    }
    envelope(rest.http.get("/api/jobs", headers=new_auth), 401)
    envelope(rest.http.post("/api/tokens", json={"expires_at": "soon"}, headers=rest.a), 400)


def test_missing_or_bad_credentials(rest: Rest) -> None:
    for method, path in [
        ("GET", "/api/jobs"),
        ("POST", "/api/tokens"),
        ("GET", "/api/tokens"),
        ("POST", "/api/notifications/x/dismiss"),
        ("GET", "/api/jobs/x"),
    ]:
        body = envelope(rest.http.request(method, path, json={}), 401)
        assert body["message"].endswith(".")
        envelope(rest.http.request(method, path, json={}, headers={"X-API-Token": "qpi_bad"}), 401)
