"""``POST /api/jobs/batch``: many jobs in one request, all or nothing, idempotent."""

from __future__ import annotations

from tests.integration.gateway.conftest import Rest, envelope

BATCH = "/api/jobs/batch"


def test_rest_batch_submits_all_or_nothing(rest: Rest, bell_qasm: str) -> None:
    rest.server.register_qpu("parked", 2)
    jobs = [
        {
            "circuits": [{"circuit": bell_qasm}],
            "shots": 10,
            "qpu_target": "parked",
            "request_id": f"r{i}",
        }
        for i in range(12)
    ]
    resp = rest.http.post(BATCH, json={"jobs": jobs}, headers=rest.a)
    assert resp.status_code == 201, resp.text
    created = resp.json()["jobs"]
    assert [j["status"] for j in created] == ["pending"] * 12
    assert all(j["user_id"] == rest.a_id for j in created)
    again = rest.http.post(BATCH, json={"jobs": jobs}, headers=rest.a).json()["jobs"]
    assert [j["id"] for j in again] == [j["id"] for j in created]
    listed = rest.http.get("/api/jobs", headers=rest.a).json()
    assert len(listed) == 12
    # One bad circuit: nothing is submitted, and the error names the job.
    bad = [*jobs[:2], {"circuits": [{"circuit": "OPENQASM 2.0; nonsense"}]}, jobs[3]]
    fresh = [{**j, "request_id": f"x{i}"} for i, j in enumerate(bad)]
    body = envelope(rest.http.post(BATCH, json={"jobs": fresh}, headers=rest.a), 400)
    assert "Job 2 of the batch" in body["message"], body
    assert len(rest.http.get("/api/jobs", headers=rest.a).json()) == 12
    too_many = {"jobs": [jobs[0]] * 1001}
    envelope(rest.http.post(BATCH, json=too_many, headers=rest.a), 400)
    envelope(rest.http.post(BATCH, json={"jobs": []}, headers=rest.a), 400)
    envelope(rest.http.post(BATCH, json={"jobs": jobs[:1]}), 401, 403)
