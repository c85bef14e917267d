"""Conformance details schemathesis found (issue 12, item 9): what the OpenAPI document
allows is accepted, what is refused is said by the document, and 405s carry ``Allow``."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BELL_QASM2


@pytest.fixture
def api(qpi_server: object) -> httpx.Client:
    with httpx.Client(
        base_url=qpi_server.http_url,
        headers={"Authorization": qpi_server.admin_token},
        timeout=30,
    ) as client:
        yield client


def allow(resp: httpx.Response) -> set[str]:
    return {m.strip() for m in resp.headers["allow"].split(",")} - {"HEAD"}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("PUT", "/api/jobs", {"GET", "POST"}),
        ("DELETE", "/api/tokens", {"GET", "POST"}),
        ("PUT", "/api/tokens/x", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/collections/time_slots/records/x", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/api/collections/events/records", {"GET"}),
    ],
)
def test_405_lists_every_allowed_method(
    api: httpx.Client, method: str, path: str, expected: set[str]
) -> None:
    resp = api.request(method, path)
    assert resp.status_code == 405
    assert resp.json()["status"] == 405
    assert allow(resp) == expected


def sort_pattern(api: httpx.Client, path: str) -> str:
    spec = api.get("/openapi.json").json()
    (param,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "sort"]
    return str(param["schema"]["pattern"])


@pytest.mark.parametrize("path", ["/api/jobs", "/api/qpus", "/api/tokens"])
def test_sort_values_the_schema_allows_are_accepted(api: httpx.Client, path: str) -> None:
    pattern = sort_pattern(api, path)
    for good in ["", "created", " -created , +id", "id,-created"]:
        assert re.fullmatch(pattern, good), good
        assert api.get(path, params={"sort": good}).status_code == 200, good
    for bad in ["+", "-", "created,", "nope", "id;drop"]:
        assert not re.fullmatch(pattern, bad), bad
        assert api.get(path, params={"sort": bad}).status_code == 400, bad

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=st.from_regex(pattern, fullmatch=True).filter(lambda v: len(v) <= 512))
    def generated(value: str) -> None:
        resp = api.get(path, params={"sort": value})
        assert resp.status_code == 200, (value, resp.text)

    generated()


def test_integral_numbers_are_integers(api: httpx.Client, qpi_server: object) -> None:
    """JSON Schema's ``integer`` includes 5.0; strings and fractions stay refused."""
    created = api.post("/api/op/qpus/create", json={"name": "ints", "num_qubits": 5.0})
    assert created.status_code == 201, created.text
    assert created.json()["num_qubits"] == 5
    for bad in ("5", 5.5, True):
        resp = api.post("/api/op/qpus/create", json={"name": "ints2", "num_qubits": bad})
        assert resp.status_code == 400, bad
    job = api.post(
        "/api/jobs",
        json={
            "circuits": [{"circuit": BELL_QASM2, "shots": 10.0}],
            "shots": 100.0,
            "meas_level": 2.0,
            "qpu_target": "ints",
        },
    )
    assert job.status_code == 201, job.text
    assert job.json()["payload"]["shots"] == 100
    assert job.json()["payload"]["circuits"][0]["shots"] == 10


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2030-01-02T03:04:05Z", "2030-01-02 03:04:05.000Z"),
        ("2030-01-02T05:04:05.5+02:00", "2030-01-02 03:04:05.500Z"),
        ("2030-01-02t03:04:05z", "2030-01-02 03:04:05.000Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31 23:59:59.000Z"),
        ("2001-01-01T00:00:00Z", "2001-01-01 00:00:00.000Z"),  # in the past: just expired
        ("2030-01-02 03:04:05.678Z", "2030-01-02 03:04:05.678Z"),
    ],
)
def test_token_expiry_takes_every_rfc3339_date(api: httpx.Client, sent: str, stored: str) -> None:
    token = api.post("/api/tokens", json={"name": "t"}).json()["id"]
    spec = api.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["TokenUpdate"]["properties"]["expires_at"]
    assert '{"type": "string", "format": "date-time"}' in json.dumps(schema)
    resp = api.patch(f"/api/tokens/{token}", json={"expires_at": sent})
    assert resp.status_code == 200, resp.text
    assert resp.json()["expires_at"] == stored
    cleared = api.patch(f"/api/tokens/{token}", json={"expires_at": ""})
    assert "expires_at" not in cleared.json()


@pytest.mark.parametrize("header", ["Authorization", "X-API-Token"])
@pytest.mark.parametrize(
    "value", [b"Bearer \xe9t\xe9", "\u00e9".encode(), b"Bearer a\tb", b"qpi_" + b"x" * 9000]
)
def test_malformed_credentials_are_401_not_500(
    qpi_server: object, header: str, value: bytes
) -> None:
    """Header bytes HTTP allows but gRPC metadata does not (non-ASCII, tabs, megabytes)."""
    resp = httpx.get(f"{qpi_server.http_url}/api/jobs", headers={header: value}, timeout=30)
    assert resp.status_code == 401, resp.text
    assert resp.json()["status"] == 401
