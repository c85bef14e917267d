"""Composite results of calls that return more than one resource (secrets shown once)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from qpi.sdk.models import ApiToken, Driver, Job, Notification, Qpu, User, _time
from qpi.v1 import (
    account_service_pb2,
    admin_service_pb2,
    event_service_pb2,
    qpu_service_pb2,
)


@dataclass(frozen=True, slots=True)
class CreatedQpu:
    """A new QPU with its first driver's access token (shown only once).

    Example:
        >>> created = admin.create_qpu("qpu-1", num_qubits=5)
        >>> print(created.access_token, created.ca_fingerprint)
    """

    qpu: Qpu
    driver: Driver | None
    access_token: str
    ca_fingerprint: str

    @classmethod
    def _from_proto(cls, msg: qpu_service_pb2.CreateQpuResponse) -> CreatedQpu:
        return cls(
            qpu=Qpu._from_proto(msg.qpu),
            driver=Driver._from_proto(msg.driver) if msg.HasField("driver") else None,
            access_token=msg.access_token,
            ca_fingerprint=msg.ca_fingerprint,
        )


@dataclass(frozen=True, slots=True)
class CreatedDriver:
    """A new driver registration with its access token (shown only once)."""

    driver: Driver
    access_token: str
    ca_fingerprint: str

    @classmethod
    def _from_proto(cls, msg: qpu_service_pb2.CreateDriverResponse) -> CreatedDriver:
        return cls(
            driver=Driver._from_proto(msg.driver),
            access_token=msg.access_token,
            ca_fingerprint=msg.ca_fingerprint,
        )


@dataclass(frozen=True, slots=True)
class CreatedApiToken:
    """A new API token: ``token`` is the raw secret, returned only by this call."""

    api_token: ApiToken
    token: str

    @classmethod
    def _from_proto(cls, msg: account_service_pb2.CreateApiTokenResponse) -> CreatedApiToken:
        return cls(api_token=ApiToken._from_proto(msg.api_token), token=msg.token)


@dataclass(frozen=True, slots=True)
class LoginSession:
    """The result of :meth:`QPIClient.login`; the client already stored ``token``."""

    token: str
    user: User
    expires: dt.datetime | None

    @classmethod
    def _from_proto(cls, msg: account_service_pb2.LoginResponse) -> LoginSession:
        return cls(
            token=msg.token, user=User._from_proto(msg.user), expires=_time(msg, "expire_time")
        )


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Public server facts (no credentials needed to read them)."""

    version: str
    ca_fingerprint: str
    ca_certificate_pem: str
    password_auth_enabled: bool
    signup_enabled: bool
    grpc_port: int
    grpc_tls: bool
    oauth2_providers: tuple[str, ...]

    @classmethod
    def _from_proto(cls, msg: admin_service_pb2.GetServerInfoResponse) -> ServerInfo:
        return cls(
            version=msg.version,
            ca_fingerprint=msg.ca_fingerprint,
            ca_certificate_pem=msg.ca_certificate_pem,
            password_auth_enabled=msg.password_auth_enabled,
            signup_enabled=msg.signup_enabled,
            grpc_port=msg.grpc_port,
            grpc_tls=msg.grpc_tls,
            oauth2_providers=tuple(msg.oauth2_providers),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One change from :meth:`QPIClient.subscribe`; exactly one payload field is set.

    Attributes:
        kind: ``"job"``, ``"qpu"``, ``"notification"`` or ``"deleted_notification_id"``.
    """

    kind: str
    job: Job | None = None
    qpu: Qpu | None = None
    notification: Notification | None = None
    deleted_notification_id: str = ""

    @classmethod
    def _from_proto(cls, msg: event_service_pb2.SubscribeResponse) -> Event:
        kind = msg.WhichOneof("event") or ""
        if kind == "job":
            return cls(kind=kind, job=Job._from_proto(msg.job))
        if kind == "qpu":
            return cls(kind=kind, qpu=Qpu._from_proto(msg.qpu))
        if kind == "notification":
            return cls(kind=kind, notification=Notification._from_proto(msg.notification))
        return cls(kind=kind, deleted_notification_id=msg.deleted_notification_id)
