"""SDK fixtures layered on the shared ``qpi_server`` fixture (tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qpi.sdk import QPIClient


@dataclass
class Account:
    """A regular user with an API token and a client using it."""

    user_id: str
    email: str
    password: str
    token: str
    client: QPIClient


@pytest.fixture
def admin(qpi_server: Any) -> Iterator[QPIClient]:
    """A client logged in as the server's administrator."""
    with QPIClient(qpi_server.grpc_target) as client:
        client.login(qpi_server.admin_email, qpi_server.admin_password)
        yield client


def _new_account(qpi_server: Any, seconds: float = 3600.0) -> Iterator[Account]:
    email = f"user-{uuid.uuid4().hex[:8]}@example.org"
    password = "correct horse battery"
    user_id, token = qpi_server.create_user(email, password, seconds)
    with QPIClient(qpi_server.grpc_target, api_token=token) as client:
        yield Account(user_id, email, password, token, client)


@pytest.fixture
def user(qpi_server: Any) -> Iterator[Account]:
    """A fresh user with an hour of QPU time."""
    yield from _new_account(qpi_server)


@pytest.fixture
def other_user(qpi_server: Any) -> Iterator[Account]:
    """A second, unrelated user."""
    yield from _new_account(qpi_server)


@pytest.fixture
def qpu_id(qpi_server: Any) -> str:
    """A 2-qubit QPU with a connected mock driver executing jobs."""
    qpu: str = qpi_server.create_qpu(f"qpu-{uuid.uuid4().hex[:6]}", 2)
    return qpu
