"""The SQL repositories of one database, as the composition root hands them out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from qpi.server.store.account_listing import AccountListing, SqlAccountListing
from qpi.server.store.accounts import AccountRepository, SqlAccountRepository
from qpi.server.store.base import session_factory
from qpi.server.store.booking_listing import BookingListing, SqlBookingListing
from qpi.server.store.bookings import BookingRepository, SqlBookingRepository
from qpi.server.store.job_batches import JobBatches, SqlJobBatches
from qpi.server.store.job_listing import JobListing, SqlJobListing
from qpi.server.store.jobs import JobRepository, LeaseRepository, SqlJobRepository
from qpi.server.store.loop_connections import LoopConnections
from qpi.server.store.nng_ports import NngPortStore
from qpi.server.store.notification_listing import NotificationListing, SqlNotificationListing
from qpi.server.store.notifications import NotificationRepository, SqlNotificationRepository
from qpi.server.store.oauth2_logins import OAuth2LoginRepository, SqlOAuth2LoginRepository
from qpi.server.store.qpu_listing import QpuListing, SqlQpuListing
from qpi.server.store.qpus import QpuRepository, SqlQpuRepository
from qpi.server.store.replicas import ReplicaRepository, SqlReplicaRepository
from qpi.server.store.telemetry import SqlTelemetryRepository, TelemetryRepository
from qpi.server.store.telemetry_listing import SqlTelemetryListing, TelemetryListing


@dataclass(frozen=True)
class Repositories:
    """One repository per aggregate (jobs and leases share the job table)."""

    accounts: AccountRepository
    qpus: QpuRepository
    jobs: JobRepository
    leases: LeaseRepository
    bookings: BookingRepository
    notifications: NotificationRepository
    telemetry: TelemetryRepository
    nng_ports: NngPortStore
    oauth2_logins: OAuth2LoginRepository
    job_listing: JobListing
    job_batches: JobBatches
    telemetry_listing: TelemetryListing
    replicas: ReplicaRepository
    account_listing: AccountListing
    booking_listing: BookingListing
    notification_listing: NotificationListing
    qpu_listing: QpuListing


def sql_repositories(engine: Engine, loop: LoopConnections | None = None) -> Repositories:
    """The SQL implementations over `engine` (SQLite or PostgreSQL), with `loop`'s
    connections for the writes the event loop can send itself (PostgreSQL)."""
    jobs = SqlJobRepository(engine, loop)
    return Repositories(
        accounts=SqlAccountRepository(engine),
        qpus=SqlQpuRepository(engine),
        jobs=jobs,
        leases=jobs,
        bookings=SqlBookingRepository(engine),
        notifications=SqlNotificationRepository(engine),
        telemetry=SqlTelemetryRepository(engine),
        nng_ports=NngPortStore(session_factory(engine)),
        oauth2_logins=SqlOAuth2LoginRepository(engine),
        job_listing=SqlJobListing(engine),
        job_batches=SqlJobBatches(engine),
        telemetry_listing=SqlTelemetryListing(engine),
        replicas=SqlReplicaRepository(engine),
        account_listing=SqlAccountListing(engine),
        booking_listing=SqlBookingListing(engine),
        notification_listing=SqlNotificationListing(engine),
        qpu_listing=SqlQpuListing(engine),
    )
