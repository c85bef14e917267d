"""Parity smoke tests: login, users, tokens, QPUs, bookings, time requests, notifications."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import pytest

from qpi.sdk import AuthenticationError, InvalidArgumentError, PermissionDeniedError, QPIClient


def test_login_flow(qpi_server: Any, user: Any) -> None:
    with QPIClient(qpi_server.grpc_target) as client:
        session = client.login(user.email, user.password)
        assert session.token
        assert session.user.email == user.email
        assert client.get_current_user().id == user.user_id
        with pytest.raises(AuthenticationError) as caught:
            client.login(user.email, "wrong password!")
        assert caught.value.reason == "INVALID_CREDENTIALS"
        with pytest.raises((AuthenticationError, PermissionDeniedError)):
            client.login(user.email, user.password, superuser=True)


def test_admin_session(admin: QPIClient) -> None:
    me = admin.get_current_user()
    assert me.is_superuser
    assert admin.version()
    assert admin.server_info().version


def test_api_token_lifecycle(qpi_server: Any, user: Any) -> None:
    created = user.client.create_api_token("ci", expires=dt.datetime.now(dt.UTC) + dt.timedelta(1))
    assert created.token.startswith("qpi_")
    assert created.api_token.expires is not None
    with QPIClient(qpi_server.grpc_target, api_token=created.token) as scripted:
        assert scripted.get_current_user().id == user.user_id
        token_ids = [t.id for t in user.client.list_api_tokens()]
        assert created.api_token.id in token_ids
        assert user.client.get_api_token(created.api_token.id).name == "ci"
        renamed = user.client.update_api_token(created.api_token.id, name="ci-2", clear_expiry=True)
        assert (renamed.name, renamed.expires) == ("ci-2", None)
        user.client.delete_api_token(created.api_token.id)
        with pytest.raises(AuthenticationError):
            scripted.get_current_user()


def test_api_token_registered_by_digest(qpi_server: Any, user: Any) -> None:
    secret = "qpi_" + secrets.token_hex(32)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    created = user.client.create_api_token("own", token_sha256=digest)
    assert created.token == ""
    with QPIClient(qpi_server.grpc_target, api_token=secret) as scripted:
        assert scripted.get_current_user().id == user.user_id
    with pytest.raises(InvalidArgumentError, match="SHA-256"):
        user.client.create_api_token("bad", token_sha256=secret)


def test_api_token_registered_raw_must_have_the_server_format(qpi_server: Any, user: Any) -> None:
    secret = "qpi_" + secrets.token_hex(32)
    assert user.client.create_api_token("own", token=secret).token == ""
    with QPIClient(qpi_server.grpc_target, api_token=secret) as scripted:
        assert scripted.get_current_user().id == user.user_id
    with pytest.raises(InvalidArgumentError, match="qpi_ followed by 64"):
        user.client.create_api_token("weak", token="my-own-secret")


def test_users_and_balances(admin: QPIClient, user: Any) -> None:
    assert user.user_id in {u.id for u in admin.list_users()}
    assert admin.allocate_qpu_time(user.user_id, 1234).qpu_seconds == 1234
    assert user.client.get_current_user().qpu_seconds == 1234
    email = f"new-{uuid.uuid4().hex[:8]}@example.org"
    created = admin.create_user(email, "long enough password", qpu_seconds=10)
    assert (created.email, created.qpu_seconds) == (email, 10)
    with pytest.raises(PermissionDeniedError):
        user.client.allocate_qpu_time(user.user_id, 10**6)


def test_qpu_registry(admin: QPIClient, user: Any, qpu_id: str) -> None:
    name = f"reg-{uuid.uuid4().hex[:6]}"
    created = admin.create_qpu(name, num_qubits=5, enabled=True)
    assert created.qpu.name == name
    assert created.access_token
    assert created.ca_fingerprint
    assert created.driver is not None
    assert user.client.get_qpu(name).id == created.qpu.id
    assert {qpu_id, created.qpu.id} <= {q.id for q in user.client.list_qpus()}
    assert admin.toggle_qpu(created.qpu.id, False).enabled is False
    updated = admin.update_qpu(created.qpu.id, coupling_map=[(0, 1)], native_gates=["rz", "cz"])
    assert (updated.coupling_map, updated.native_gates) == (((0, 1),), ("rz", "cz"))
    assert created.driver.id in {d.id for d in admin.list_drivers(qpu_id=created.qpu.id)}
    extra = admin.create_driver(created.qpu.id, "second")
    assert extra.access_token
    with pytest.raises(PermissionDeniedError):
        user.client.create_qpu(f"nope-{uuid.uuid4().hex[:6]}")


def test_time_slots(user: Any, qpu_id: str) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    slot = user.client.create_time_slot(start, start + dt.timedelta(hours=1), qpu=qpu_id)
    assert (slot.start, slot.qpu_id, slot.user_id) == (start, qpu_id, user.user_id)
    assert slot.id in {s.id for s in user.client.list_time_slots()}
    moved = user.client.update_time_slot(slot.id, end=start + dt.timedelta(hours=2))
    assert moved.end == start + dt.timedelta(hours=2)
    user.client.delete_time_slot(slot.id)
    assert slot.id not in {s.id for s in user.client.list_time_slots()}


def test_time_requests(admin: QPIClient, user: Any) -> None:
    before = user.client.get_current_user().qpu_seconds
    approved = user.client.create_time_request(60, "experiment")
    assert approved.state == "pending"
    assert admin.approve_time_request(approved.id).state == "approved"
    assert user.client.get_current_user().qpu_seconds == before + 60
    rejected = user.client.create_time_request(30)
    assert admin.update_time_request(rejected.id, "rejected", "no").rejection_reason == "no"
    withdrawn = user.client.create_time_request(10)
    user.client.delete_time_request(withdrawn.id)
    states = {r.id: r.state for r in user.client.list_time_requests()}
    assert states[approved.id] == "approved"
    assert states[rejected.id] == "rejected"
    assert withdrawn.id not in states


def test_notifications(admin: QPIClient, user: Any) -> None:
    note = admin.create_notification("Maintenance", "Friday", target_user_ids=[user.user_id])
    assert note.id in {n.id for n in user.client.list_notifications()}
    updated = admin.update_notification(note.id, title="Maintenance moved")
    assert updated.title == "Maintenance moved"
    user.client.dismiss_notification(note.id)
    assert note.id not in {n.id for n in user.client.list_notifications()}
    dismissed = {n.id: n.dismissed for n in user.client.list_notifications(include_dismissed=True)}
    assert dismissed.get(note.id) is True
    admin.delete_notification(note.id)
    assert note.id not in {n.id for n in admin.list_notifications(all=True)}
