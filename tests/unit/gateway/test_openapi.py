"""The OpenAPI document the dashboard's client is generated from tells the truth."""

from __future__ import annotations

from typing import Any

import pytest

from qpi.gateway.app import create_app
from qpi.gateway.config import GatewayConfig

PUBLIC = {
    ("get", "/api/pub/root-ca.pem"),
    ("get", "/api/pub/server-info"),
    ("post", "/api/collections/users/auth-with-password"),
    ("post", "/api/collections/_superusers/auth-with-password"),
    ("get", "/api/collections/users/auth-methods"),
    ("get", "/api/collections/_superusers/auth-methods"),
    ("get", "/api/oauth2/{provider}/authorize"),
    ("get", "/api/oauth2/{provider}/callback"),
    ("post", "/api/oauth2/exchange"),
    ("post", "/api/op/drivers/connect"),  # the driver's token is in the body
    ("post", "/api/op/qpus/connect"),
}
OPTIONAL = {
    ("get", "/api/qpus"),
    ("get", "/api/qpus/{name_or_id}"),
    ("get", "/api/collections/qpus/records"),
    ("get", "/api/collections/qpus/records/{record_id}"),
    ("post", "/api/collections/users/records"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(GatewayConfig(grpc_target="unix:/nonexistent")).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


def test_no_unused_422_and_errors_are_the_envelope(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for method, path, op in operations(spec):
        assert "422" not in op["responses"], (method, path)
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert errors, (method, path)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
        if op.get("parameters") or op.get("requestBody"):
            assert "400" in errors, (method, path)
        assert "503" in errors, (method, path)


def test_every_success_response_has_a_schema(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        successes = {c: r for c, r in op["responses"].items() if c[0] in "23"}
        assert successes, (method, path)
        for code, response in successes.items():
            if code in ("204", "302"):
                continue
            (media,) = response["content"].values()
            assert media["schema"] not in ({}, {"type": "object"}), (method, path)


def test_security_schemes_and_which_routes_use_them(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Token",
        "description": schemes["apiToken"]["description"],
    }
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["pocketbaseAuth"]["name"] == "Authorization"
    for method, path, op in operations(spec):
        security = op.get("security", [])
        if (method, path) in PUBLIC:
            assert not security, (method, path)
            continue
        names = {name for requirement in security for name in requirement}
        assert names == {"apiToken", "bearerAuth", "pocketbaseAuth"}, (method, path)
        assert ({} in security) == ((method, path) in OPTIONAL), (method, path)
        assert "401" in op["responses"], (method, path)


def test_collections_have_their_own_record_schemas(spec: dict[str, Any]) -> None:
    listed = spec["paths"]["/api/collections/quantum_jobs/records"]["get"]
    page = listed["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("/JobRecordPage")
    items = spec["components"]["schemas"]["JobRecordPage"]["properties"]["items"]
    assert items["items"]["$ref"].endswith("/JobRecord")
    assert "qpu_name" in spec["components"]["schemas"]["JobRecord"]["required"]
    # Operations a collection does not support are not offered.
    assert set(spec["paths"]["/api/collections/events/records"]) == {"get"}
    operation_ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(operation_ids) == len(set(operation_ids))
