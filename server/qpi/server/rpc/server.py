"""Builds the grpc.aio server: servicers, health, reflection, transport tuning."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from qpi.v1 import (
    account_service_pb2,
    account_service_pb2_grpc,
    admin_service_pb2,
    admin_service_pb2_grpc,
    booking_service_pb2,
    booking_service_pb2_grpc,
    driver_service_pb2,
    driver_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    nng_service_pb2,
    nng_service_pb2_grpc,
    notification_service_pb2,
    notification_service_pb2_grpc,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)

SERVICES: tuple[tuple[str, ServiceDescriptor], ...] = tuple(
    (key, module.DESCRIPTOR.services_by_name[name])
    for key, module, name in (
        ("job", job_service_pb2, "JobService"),
        ("qpu", qpu_service_pb2, "QpuService"),
        ("booking", booking_service_pb2, "BookingService"),
        ("account", account_service_pb2, "AccountService"),
        ("notification", notification_service_pb2, "NotificationService"),
        ("admin", admin_service_pb2, "AdminService"),
        ("event", event_service_pb2, "EventService"),
        ("driver", driver_service_pb2, "DriverService"),
        ("nng", nng_service_pb2, "NngCompatService"),
    )
)
"""Each service with the key of its servicer in :func:`build_server`'s mapping."""

SERVICE_NAMES = tuple(service.full_name for _, service in SERVICES)


KEEPALIVE_INTERVAL = 5.0
"""Seconds between the server's keepalive pings on every connection."""


def keepalive_options(peer_timeout: float) -> list[tuple[str, int]]:
    """Transport keepalive: a ping every 5 s that must be answered within `peer_timeout`.

    Drivers hold streams for days; with `--heartbeat-timeout` as the ping timeout, a
    silently dead driver (or path) is dropped by the transport as soon as the driver hub
    would drop it for missing heartbeats (both within 15 s by default), and a driver that
    is merely stopped for less than that keeps its stream.
    """
    timeout_ms = max(int(peer_timeout * 1000), 1_000)
    return [
        ("grpc.keepalive_time_ms", int(KEEPALIVE_INTERVAL * 1000)),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        # gRPC core otherwise waits its general ping timeout (60 s) for an unanswered ping.
        ("grpc.http2.ping_timeout_ms", timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Enforcement: accept the drivers' own keepalive pings (every 5 s, qpi.driver.link)
        # instead of answering them with GOAWAY "too_many_pings".
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 4_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def build_server(
    max_message_bytes: int, servicers: dict[str, Any], peer_timeout: float = 10.0
) -> tuple[grpc.aio.Server, health.HealthServicer]:
    """A server with every servicer registered plus health and reflection."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        *keepalive_options(peer_timeout),
    ]
    server = grpc.aio.server(options=options)
    job_service_pb2_grpc.add_JobServiceServicer_to_server(servicers["job"], server)
    qpu_service_pb2_grpc.add_QpuServiceServicer_to_server(servicers["qpu"], server)
    booking_service_pb2_grpc.add_BookingServiceServicer_to_server(servicers["booking"], server)
    account_service_pb2_grpc.add_AccountServiceServicer_to_server(servicers["account"], server)
    notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(
        servicers["notification"], server
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(servicers["admin"], server)
    event_service_pb2_grpc.add_EventServiceServicer_to_server(servicers["event"], server)
    driver_service_pb2_grpc.add_DriverServiceServicer_to_server(servicers["driver"], server)
    nng_service_pb2_grpc.add_NngCompatServiceServicer_to_server(servicers["nng"], server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in SERVICE_NAMES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return server, health_servicer
