"""Live updates over SSE relay EventService.Subscribe with REST-shaped data."""

from __future__ import annotations

import json
import threading

import httpx

from tests.integration.gateway.conftest import Rest, envelope


def test_realtime_requires_credentials(rest: Rest) -> None:
    envelope(rest.http.get("/api/realtime/events"), 401)
    envelope(rest.http.get("/api/realtime/events", params={"token": "qpi_bad"}), 401)
    envelope(
        rest.http.get("/api/realtime/events", params={"topics": "secrets"}, headers=rest.a), 400
    )


def test_realtime_streams_job_events(rest: Rest, bell_qasm: str) -> None:
    rest.server.create_qpu("sim", 4)
    token = rest.a["X-API-Token"]
    submitted: list[str] = []

    def submit() -> None:
        with httpx.Client(base_url=rest.http.base_url, timeout=30) as other:
            job = other.post(
                "/api/jobs", json={"circuits": [{"circuit": bell_qasm}]}, headers=rest.a
            ).json()
            submitted.append(job["id"])

    statuses: list[str] = []
    with rest.http.stream(
        "GET", "/api/realtime/events", params={"token": token}, timeout=httpx.Timeout(30)
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        threading.Timer(0.5, submit).start()
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "job":
                job = json.loads(line.split(":", 1)[1])
                assert {"id", "status", "payload", "created"} <= set(job)
                statuses.append(job["status"])
                if job["status"] == "completed":
                    assert job["results"]["circuit_results"]
                    assert job["id"] == submitted[0]
                    break
    assert statuses[-1] == "completed"
