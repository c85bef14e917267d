"""Builds the grpc.aio server: servicers, health, reflection, transport tuning."""

from __future__ import annotations

from typing import Any

import grpc
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

SERVICE_NAMES = tuple(
    m.DESCRIPTOR.services_by_name[name].full_name
    for m, name in (
        (job_service_pb2, "JobService"),
        (qpu_service_pb2, "QpuService"),
        (booking_service_pb2, "BookingService"),
        (account_service_pb2, "AccountService"),
        (notification_service_pb2, "NotificationService"),
        (admin_service_pb2, "AdminService"),
        (event_service_pb2, "EventService"),
        (driver_service_pb2, "DriverService"),
        (nng_service_pb2, "NngCompatService"),
    )
)


def build_server(
    max_message_bytes: int, servicers: dict[str, Any]
) -> tuple[grpc.aio.Server, health.HealthServicer]:
    """A server with every servicer registered plus health and reflection."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Drivers hold streams for days; keepalive pings let both sides notice dead peers
        # behind NATs and proxies that silently drop idle TCP connections.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
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
