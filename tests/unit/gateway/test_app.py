"""The app against a tiny fake of the gRPC contract: wiring, auth pass-through, envelopes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from qpi.gateway.app import create_app
from qpi.gateway.config import GatewayConfig
from qpi.v1 import (
    account_pb2,
    account_service_pb2,
    account_service_pb2_grpc,
    admin_service_pb2,
    admin_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)

PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


async def abort(context: grpc.aio.ServicerContext, code: int, message: str, reason: str) -> None:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="qpi.v1"))
    await context.abort_with_status(
        rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))
    )


def caller(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata()).get("authorization", "")


class Accounts(account_service_pb2_grpc.AccountServiceServicer):
    async def GetCurrentUser(self, request, context):  # noqa: N802
        auth = caller(context)
        if auth not in ("Bearer admin", "Bearer user"):
            await abort(
                context, code_pb2.UNAUTHENTICATED, "authentication required", "UNAUTHENTICATED"
            )
        return account_service_pb2.GetCurrentUserResponse(
            user=account_pb2.User(id="u1", email="u@x", is_superuser=auth == "Bearer admin")
        )

    async def ListOAuth2Providers(self, request, context):  # noqa: N802
        return account_service_pb2.ListOAuth2ProvidersResponse(
            providers=[account_service_pb2.OAuth2Provider(name="idp", display_name="Lab IdP")]
        )


class Admin(admin_service_pb2_grpc.AdminServiceServicer):
    async def GetServerInfo(self, request, context):  # noqa: N802
        return admin_service_pb2.GetServerInfoResponse(
            version="v1",
            ca_certificate_pem=PEM,
            ca_fingerprint="ab" * 32,
            grpc_port=5,
            password_auth_enabled=True,
        )

    async def GetVersion(self, request, context):  # noqa: N802
        return admin_service_pb2.GetVersionResponse(version="v1")


class Jobs(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self) -> None:
        self.created: list[job_service_pb2.CreateJobRequest] = []
        self.seen_auth: list[str] = []

    async def CreateJob(self, request, context):  # noqa: N802
        self.seen_auth.append(caller(context))
        if caller(context) != "Bearer user":
            await abort(
                context, code_pb2.RESOURCE_EXHAUSTED, "no balance", "INSUFFICIENT_QPU_SECONDS"
            )
        self.created.append(request)
        return job_service_pb2.CreateJobResponse(
            job=job_pb2.Job(
                id="j1",
                user_id="u1",
                qpu_id="q1",
                payload=request.payload,
                state=job_pb2.Job.STATE_PENDING,
            )
        )

    async def GetJob(self, request, context):  # noqa: N802
        await abort(context, code_pb2.NOT_FOUND, "job not found", "JOB_NOT_FOUND")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, Jobs]]:
    server = grpc.aio.server()
    jobs = Jobs()
    account_service_pb2_grpc.add_AccountServiceServicer_to_server(Accounts(), server)
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(Admin(), server)
    job_service_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", jobs
    await server.stop(None)


@pytest.fixture
async def client(fake: tuple[str, Jobs], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "index.html").write_text("<html>spa</html>")
    (tmp_path / "app.js").write_text("js")
    app = create_app(
        GatewayConfig(grpc_target=fake[0], dashboard_dir=tmp_path, max_body_bytes=1000)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c
    await app.state.grpc_clients.close()


def is_envelope(resp: httpx.Response, status: int) -> dict:
    body = resp.json()
    assert resp.status_code == status, body
    assert set(body) == {"data", "message", "status"}
    assert body["status"] == status
    assert body["message"].endswith(".")
    return body


async def test_root_ca_and_server_info(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/pub/root-ca.pem")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-pem-file")
    assert resp.text.startswith("-----BEGIN CERTIFICATE-----")
    info = (await client.get("/api/pub/server-info")).json()
    assert info == {"version": "v1", "grpc_port": 5, "grpc_tls": False, "ca_fingerprint": "ab" * 32}


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer user"}, {"Authorization": "user"}, {"X-API-Token": "user"}],
)
async def test_credentials_forwarded_as_bearer(
    client: httpx.AsyncClient, fake: tuple[str, Jobs], headers: dict[str, str]
) -> None:
    body = {
        "circuits": [{"circuit": "OPENQASM 2.0;"}],
        "shots": 10,
        "qpu_target": "sim",
        "acq_rotation": 1,
    }
    resp = await client.post("/api/jobs", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["id"] == "j1"
    assert fake[1].seen_auth[-1] == "Bearer user"
    assert fake[1].created[-1].qpu == "sim"


async def test_insufficient_balance_is_403_with_spec_message(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/jobs", json={"circuits": [{"circuit": "x"}]})
    assert is_envelope(resp, 403)["message"] == "Insufficient QPU seconds balance."


async def test_not_found_from_rpc(client: httpx.AsyncClient) -> None:
    assert is_envelope(await client.get("/api/jobs/nope"), 404)["message"] == "Job not found."


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps({"circuits": []}).encode(), "circuits"),
        (json.dumps({"circuits": [{"circuit": 5}]}).encode(), "circuits.0.circuit"),
        (json.dumps({"circuits": [{"circuit": "x"}], "shots": "many"}).encode(), "shots"),
        (json.dumps({"circuits": [{"circuit": "x"}], "shots": 2**40}).encode(), "shots"),
    ],
)
async def test_bad_bodies_give_400_envelope(
    client: httpx.AsyncClient, fake: tuple[str, Jobs], content: bytes, field: str | None
) -> None:
    before = len(fake[1].created)
    resp = await client.post(
        "/api/jobs",
        content=content,
        headers={"X-API-Token": "user", "Content-Type": "application/json"},
    )
    body = is_envelope(resp, 400)
    if field:
        assert field in body["data"]
    assert len(fake[1].created) == before


async def test_body_limit_declared_and_streamed(client: httpx.AsyncClient) -> None:
    big = b'{"circuits": [{"circuit": "' + b"x" * 2000 + b'"}]}'
    is_envelope(await client.post("/api/jobs", content=big), 413)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    is_envelope(await client.post("/api/jobs", content=chunks()), 413)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    is_envelope(await client.get("/api/nothing"), 404)
    is_envelope(await client.delete("/api/jobs"), 405)


async def test_admin_route_requires_admin(client: httpx.AsyncClient) -> None:
    assert is_envelope(await client.get("/api/op/version"), 403)["message"] == (
        "Admin access required."
    )
    is_envelope(await client.post("/api/op/qpu/toggle", headers={"X-API-Token": "user"}), 403)
    resp = await client.get("/api/op/version", headers={"Authorization": "admin"})
    assert resp.json() == {"version": "v1"}


async def test_invalid_filter_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/api/collections/quantum_jobs/records",
        params={"filter": "id != '' || 1=1"},
        headers={"X-API-Token": "user"},
    )
    assert "filter" in is_envelope(resp, 400)["message"].lower()
    is_envelope(await client.get("/api/collections/nope/records"), 404)


async def test_auth_methods(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/collections/users/auth-methods")
    assert resp.json() == {
        "password": {"enabled": True, "identityFields": ["email"]},
        "oauth2": {
            "enabled": True,
            "providers": [
                {
                    "name": "idp",
                    "displayName": "Lab IdP",
                    "authURL": "/api/oauth2/idp/authorize?redirect=/dashboard/",
                }
            ],
        },
    }
    admins = await client.get("/api/collections/_superusers/auth-methods")
    assert admins.json()["oauth2"] == {"enabled": False, "providers": []}


async def test_dashboard_spa_fallback_and_traversal(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dashboard/app.js")).text == "js"
    assert "spa" in (await client.get("/dashboard/some/route")).text
    assert "spa" in (await client.get("/dashboard/..%2F..%2Fetc%2Fpasswd")).text
    # A missing script must not be answered with index.html (the browser would run HTML).
    missing = await client.get("/dashboard/assets/gone-1234.js")
    assert missing.status_code == 404
    assert "spa" not in missing.text


async def test_dashboard_headers_and_redirects(client: httpx.AsyncClient, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "index-abc123.js").write_text("hashed")
    asset = await client.get("/dashboard/assets/index-abc123.js")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    index = await client.get("/dashboard/")
    assert index.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    for path in ("/", "/dashboard"):
        resp = await client.get(path)
        assert resp.status_code == 307
        assert resp.headers["location"] == "/dashboard/"


@pytest.mark.parametrize("built", [False, True])
async def test_dashboard_not_built_is_explained(
    fake: tuple[str, Jobs], tmp_path: Path, built: bool
) -> None:
    if built:  # built after start-up: served without a restart
        (tmp_path / "index.html").write_text("<html>spa</html>")
    app = create_app(GatewayConfig(grpc_target=fake[0], dashboard_dir=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/dashboard/")
    await app.state.grpc_clients.close()
    if built:
        assert resp.status_code == 200
        assert "spa" in resp.text
    else:
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("text/html")
        assert "has not been built" in resp.text
        assert "make build" in resp.text
        assert str(tmp_path) in resp.text


async def test_openapi_available(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/jobs" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
