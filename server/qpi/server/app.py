"""Composition root: builds every part of `qpi serve` and runs it until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from qpi.gateway.app import create_app
from qpi.gateway.config import GatewayConfig
from qpi.server.cluster.leadership import LeaderDuties, Leadership
from qpi.server.cluster.registry import ReplicaAddress, ReplicaRegistry
from qpi.server.cluster.relay import EventRelay
from qpi.server.cluster.replica import start_replica
from qpi.server.config import parse_shot_seconds
from qpi.server.domain.accounting import ShotTimes
from qpi.server.domain.bookings import BookingPolicy
from qpi.server.domain.clock import Clock, SystemClock
from qpi.server.domain.jobs import JobLimits
from qpi.server.domain.policy import BookingFirstFifoPolicy
from qpi.server.domain.qasm_budget import QasmBudget
from qpi.server.domain.replicas import ReplicaTiming
from qpi.server.drivers.hub import DriverHub
from qpi.server.drivers.nng.channel import ChannelConfig, ChannelDeps
from qpi.server.drivers.nng.sockets import TlsMaterial
from qpi.server.drivers.nng.transport import NngTransport, PortRange
from qpi.server.rpc.account_servicer import AccountServicer
from qpi.server.rpc.admin_servicer import AdminServicer, ServerFacts
from qpi.server.rpc.booking_servicer import BookingServicer
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.driver_servicer import DriverServicer, ResultLimits
from qpi.server.rpc.event_servicer import EventServicer
from qpi.server.rpc.job_servicer import JobServicer
from qpi.server.rpc.local import LocalCall, local_calls
from qpi.server.rpc.nng_servicer import NngCompatServicer
from qpi.server.rpc.notification_servicer import NotificationServicer
from qpi.server.rpc.qpu_servicer import QpuServicer
from qpi.server.rpc.server import build_server
from qpi.server.scheduling.dispatcher import Dispatcher
from qpi.server.scheduling.recovery import maintenance_duties
from qpi.server.security.oauth2_providers import parse_providers
from qpi.server.security.passwords import PasswordWork
from qpi.server.security.pki import PkiMaterial, ca_due, load_or_create_pki
from qpi.server.security.throttle import LoginThrottle
from qpi.server.services.account_service import CREDENTIALS_TOPIC, AccountService
from qpi.server.services.auth_cache import PrincipalCache
from qpi.server.services.auth_service import AuthService
from qpi.server.services.booking_service import BookingService
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.job_service import JobService
from qpi.server.services.lease_service import LeaseService
from qpi.server.services.login_service import LoginService
from qpi.server.services.notification_service import NotificationService
from qpi.server.services.oauth2_client import OAuth2Http
from qpi.server.services.oauth2_service import OAuth2Service
from qpi.server.services.qasm import ParserLimits, QasmParserPool, in_process
from qpi.server.services.qpu_service import QpuService
from qpi.server.services.submission import SubmissionService
from qpi.server.services.telemetry_service import TelemetryService
from qpi.server.settings import ServerSettings
from qpi.server.store.database import (
    PING_AFTER_IDLE_SECONDS,
    create_db_engine,
    is_sqlite,
    migrate,
    sqlite_path,
)
from qpi.server.store.loop_connections import LoopConnections
from qpi.server.store.notify import conninfo
from qpi.server.store.planner_statistics import analyse_unanalysed
from qpi.server.store.repositories import Repositories, sql_repositories
from qpi.server.store.sqlite_checkpoints import WalCheckpointer

logger = logging.getLogger(__name__)

PKI_CHECK_SECONDS = 3600.0
CHECKOUT_DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard" / "dist"
"""Where `make build` puts the dashboard in a source checkout (the default --dashboard-dir)."""


def server_version() -> str:
    """The installed server version, e.g. "v0.1.0"."""
    try:
        return "v" + version("qpi-server")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "v0.0.0"


class _GatewayServer(uvicorn.Server):
    """uvicorn without its own signal handling: `qpi serve` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class QpiServer:
    """One running `qpi serve`: gRPC services, REST gateway and background loops."""

    def __init__(self, settings: ServerSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.grpc_port = 0
        self.http_port = 0
        self.pki: PkiMaterial | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._grpc: grpc.aio.Server | None = None
        self._local_calls: dict[str, LocalCall] = {}
        self._uvicorn: uvicorn.Server | None = None
        self._uvicorn_task: asyncio.Task[None] | None = None
        self._db: Database | None = None
        self._socket_dir = ""
        self._qasm: QasmParserPool | None = None
        self._oauth2_http: OAuth2Http | None = None
        self.nng: NngTransport | None = None
        self._passwords: PasswordWork | None = None
        self.relay: EventRelay | None = None
        self.checkpoints: WalCheckpointer | None = None
        self._loop_connections: LoopConnections | None = None
        self.registry: ReplicaRegistry | None = None
        self.leadership: Leadership | None = None

    @staticmethod
    async def _warm_parsers(pool: QasmParserPool) -> None:
        try:
            await asyncio.to_thread(pool.warm_up)
        except Exception:  # a worker that failed to start is replaced on first use
            logger.warning("QASM parser warm-up failed", exc_info=True)

    def _load_pki(self) -> PkiMaterial:
        s = self.settings
        return load_or_create_pki(
            s.resolve(s.tls_ca_cert_file),
            s.resolve(s.tls_ca_key_file),
            s.resolve(s.tls_cert_file),
            s.resolve(s.tls_key_file),
            hosts=[h for h in (s.domain, s.ip_addr) if h],
        )

    async def start(self) -> None:
        """Migrates the database, then starts every listener and loop."""
        s = self.settings
        s.data_path.mkdir(parents=True, exist_ok=True)
        self.pki = pki = await asyncio.to_thread(self._load_pki)
        logger.info("Active CA fingerprint: %s", pki.fingerprint)
        engine = create_db_engine(s.effective_database_url)
        await asyncio.to_thread(migrate, engine)
        self._db = db = Database(engine)
        sqlite_file = sqlite_path(engine)
        if sqlite_file is not None:  # the database thread never waits for a checkpoint
            self.checkpoints = WalCheckpointer(sqlite_file).start()
        events = EventBus()
        events.bind(asyncio.get_running_loop())
        self._qasm = QasmParserPool(
            ParserLimits(
                QasmBudget(s.max_circuit_width, s.max_operations),
                s.max_parse_time,
                s.max_parser_memory,
                s.parser_processes,
            )
        )
        if not is_sqlite(engine):  # submits stored from the event loop (loop_connections)
            self._loop_connections = LoopConnections(
                conninfo(engine), engine.dialect, ping_after_idle=PING_AFTER_IDLE_SECONDS
            )
        repos = sql_repositories(engine, self._loop_connections)
        services = self._services(db, repos, events, pki)
        if not is_sqlite(engine):
            # Replicas on one PostgreSQL database see each other's events (SQLite: one server).
            self.relay = EventRelay(conninfo(engine), events, db, repos.jobs.get)
            await self.relay.start()
        # Workers import Qiskit before the server answers, so the first submission is as
        # fast as any other.
        await self._warm_parsers(self._qasm)
        # Clears only what dead replicas left: live ones keep their drivers and QPUs.
        self.registry = services["registry"]
        await db.run(self.registry.join)
        graced = await db.run(services["leases"].grace_after_start)
        if graced:
            logger.info("[Recovery] %d running lease(s) get a lease period to resume", graced)
        self.nng = services["nng"]
        hub: DriverHub = services["hub"]
        dispatcher = Dispatcher(
            db,
            events,
            services["leases"],
            hub,
            BookingFirstFifoPolicy(),
            self.clock,
            s.idle_threshold,
            s.dispatch_poll_interval,
            alone=lambda: self.relay is None or not self.relay.sending,
        )
        services["submissions"].use_direct_leases(dispatcher)
        # Listeners of NNG drivers come back on their ports (their daemons only redial)
        # before the server answers as ready, so nobody sees it up without them.
        await self.nng.restore()
        await self._start_grpc(db, events, services, pki)
        await self._start_gateway()
        self._tasks += [
            asyncio.create_task(self.nng.watch(events)),
            asyncio.create_task(hub.watch()),
            asyncio.create_task(dispatcher.run()),
            asyncio.create_task(self._pki_renewal()),
        ]
        await self._start_cluster(db, services)
        logger.info(
            "QPI %s serving gRPC on :%d (%s) and HTTP on :%d",
            server_version(),
            self.grpc_port,
            "plaintext" if s.insecure else "TLS",
            self.http_port,
        )

    async def _start_cluster(self, db: Database, services: dict[str, Any]) -> None:
        """Heartbeats this replica and competes for leadership; only the leader runs
        recovery, pruning and the dead-replica sweep (see cluster/leadership.py)."""
        s, registry, hub = self.settings, services["registry"], services["hub"]
        registry.address = ReplicaAddress(
            s.domain or s.ip_addr, self.grpc_port, self.http_port, server_version()
        )
        await db.run(registry.announce)

        async def planner_statistics() -> None:
            await db.run(analyse_unanalysed, db.engine)

        # PostgreSQL plans a young jobs table from guesses until it is first analysed.
        loops = maintenance_duties(
            db, services["leases"], services["telemetry"], s.recovery_interval,
            s.events_prune_interval,
        )  # fmt: skip
        if not is_sqlite(db.engine):
            loops.append(("planner statistics", 10.0, planner_statistics))
        duties = LeaderDuties(loops=loops)
        self.leadership, tasks = start_replica(db, registry, hub, duties, self.clock)
        self._tasks += tasks

    def _services(
        self, db: Database, repos: Repositories, events: EventBus, pki: PkiMaterial
    ) -> dict[str, Any]:
        s, clock = self.settings, self.clock
        qpus = QpuService(repos.qpus, clock, events, pki.fingerprint, listing=repos.qpu_listing)
        assert self._qasm is not None
        jobs = JobService(
            repos.jobs,
            repos.accounts,
            qpus,
            clock,
            events,
            JobLimits(s.max_shots, s.max_circuits, s.max_payload_bytes),
            in_process(self._qasm.limits.budget),
            ShotTimes(s.shot_seconds_estimate, parse_shot_seconds(s.qpu_shot_seconds)),
            s.max_pending_per_user,
            listing=repos.job_listing,
            batches=repos.job_batches,
        )
        leases = LeaseService(repos.leases, clock, events, s.job_timeout, s.max_result_bytes)
        telemetry = TelemetryService(
            repos.telemetry, clock, s.events_retention, listing=repos.telemetry_listing
        )
        registry = ReplicaRegistry(
            repos.replicas,
            clock,
            events,
            # A replica is dead after as long a silence as a driver would be.
            ReplicaTiming(s.heartbeat_interval, s.heartbeat_timeout),
            sole_server=is_sqlite(db.engine),
        )
        hub = DriverHub(
            db,
            events,
            leases,
            qpus,
            telemetry,
            s.heartbeat_timeout,
            s.event_rate_limit,
            directory=registry,
        )
        auth = AuthService(
            repos.accounts, repos.qpus, clock, s.session_ttl, not s.disable_email_password_auth
        )
        self._passwords = passwords = PasswordWork()
        throttle = LoginThrottle(s.login_limit_per_account, s.login_limit_per_address)
        self._oauth2_http = OAuth2Http()
        oauth2 = OAuth2Service(
            db,
            repos.oauth2_logins,
            repos.accounts,
            clock,
            parse_providers(s.oauth2_providers),
            self._oauth2_http,
            auth,
            s.allow_signup,
        )
        return {
            "auth": auth,
            "logins": LoginService(db, auth, throttle, passwords),
            "passwords": passwords,
            "oauth2": oauth2,
            "accounts": AccountService(
                repos.accounts, clock, s.allow_signup, events, listing=repos.account_listing
            ),
            "qpus": qpus,
            "jobs": jobs,
            "submissions": SubmissionService(
                db,
                jobs,
                self._qasm.max_qubits,
                self._qasm.max_qubits_each,
                on_loop=self._loop_connections is not None,
            ),
            "leases": leases,
            "telemetry": telemetry,
            "bookings": BookingService(
                repos.bookings,
                repos.accounts,
                qpus,
                clock,
                events,
                BookingPolicy(s.booking_max_length, s.booking_max_horizon, s.booking_max_weekly),
                listing=repos.booking_listing,
            ),
            "notifications": NotificationService(
                repos.notifications, clock, events, listing=repos.notification_listing
            ),
            "hub": hub,
            "registry": registry,
            "nng": self._nng_transport(db, repos, hub, leases, pki),
        }

    def _nng_transport(
        self,
        db: Database,
        repos: Repositories,
        hub: DriverHub,
        leases: LeaseService,
        pki: PkiMaterial,
    ) -> NngTransport:
        s = self.settings
        return NngTransport(
            ChannelDeps(db, hub, leases, repos.nng_ports, self.clock),
            ChannelConfig(
                bind_host=s.bind_host,
                heartbeat_interval=s.heartbeat_interval,
                # A cancelled job keeps its driver busy until it ends, at most this long.
                drain_seconds=max(s.job_timeout, 10.0),
                # Room for the largest accepted result plus its envelope; bigger ones are
                # dropped by NNG itself before any parsing.
                max_message_bytes=s.max_result_bytes * 2 + 1_048_576,
            ),
            PortRange(s.port_range_start, s.port_range_end),
            s.ip_addr,
            _nng_tls(pki),
            pki.fingerprint,
        )

    async def _start_grpc(
        self, db: Database, events: EventBus, sv: dict[str, Any], pki: PkiMaterial
    ) -> None:
        s = self.settings
        # Recently authenticated tokens skip the database; local revocations drop them.
        principals = PrincipalCache(self.clock.now)
        events.listen(CREDENTIALS_TOPIC, principals.invalidate)
        auth = Authenticator(db, sv["auth"], principals)
        self._facts = ServerFacts(
            server_version(),
            pki.fingerprint,
            pki.ca_cert_pem.decode(),
            0,
            not s.insecure,
            not s.disable_email_password_auth,
            s.allow_signup,
            s.oauth2_providers,
        )
        # Room for the largest payload/result plus protobuf framing.
        limit = max(s.max_payload_bytes, s.max_result_bytes) * 2 + 1_048_576
        servicers = {
            "job": JobServicer(db, auth, sv["jobs"], sv["submissions"], events),
            "qpu": QpuServicer(db, auth, sv["qpus"]),
            "booking": BookingServicer(db, auth, sv["bookings"], sv["accounts"]),
            "account": AccountServicer(
                db, auth, sv["auth"], sv["accounts"], sv["logins"], sv["passwords"], sv["oauth2"]
            ),
            "notification": NotificationServicer(db, auth, sv["notifications"]),
            "admin": AdminServicer(db, auth, self._facts, sv["telemetry"]),
            "event": EventServicer(db, auth, events, sv["jobs"], sv["qpus"], sv["notifications"]),
            "nng": NngCompatServicer(auth, sv["nng"]),
            "driver": DriverServicer(
                db,
                auth,
                sv["hub"],
                sv["qpus"],
                server_version(),
                s.heartbeat_interval,
                s.heartbeat_timeout,
                ResultLimits(s.max_result_bytes, limit),
            ),
        }
        self._grpc, _ = build_server(limit, servicers, s.heartbeat_timeout)
        self._local_calls = local_calls(servicers)
        address = f"{s.bind_host}:{s.grpc_port}"
        if s.insecure:
            self.grpc_port = self._grpc.add_insecure_port(address)
        else:
            self.grpc_port = self._grpc.add_secure_port(address, self._credentials())
        if self.grpc_port == 0:
            raise RuntimeError(f"cannot bind the gRPC port {address}")
        # The in-process gateway talks to the services over a private Unix socket, so
        # REST never needs a plaintext TCP port.
        self._socket_dir = tempfile.mkdtemp(prefix="qpi-")
        self._gateway_target = f"unix:{Path(self._socket_dir) / 'grpc.sock'}"
        self._grpc.add_insecure_port(self._gateway_target)
        self._facts.grpc_port = self.grpc_port
        await self._grpc.start()

    def _credentials(self) -> grpc.ServerCredentials:
        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called by gRPC on new handshakes: serve renewed certificates without a restart.
            if self.pki is None or self.pki is served[0]:
                return None
            served[0] = self.pki
            return self._cert_config(self.pki)

        assert self.pki is not None
        served: list[PkiMaterial | None] = [self.pki]
        # gRPC treats a None answer as "unchanged"; its stubs do not say so.
        return grpc.dynamic_ssl_server_credentials(self._cert_config(self.pki), fetch)  # type: ignore[arg-type]

    @staticmethod
    def _cert_config(pki: PkiMaterial) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(pki.key_pem, pki.cert_pem + pki.ca_cert_pem)]
        )

    async def _pki_renewal(self) -> None:
        while True:
            await asyncio.sleep(PKI_CHECK_SECONDS)
            if not self._may_renew_pki():
                continue
            try:
                fresh = await asyncio.to_thread(self._load_pki)
            except Exception:
                logger.exception("[PKI] renewal check failed")
                continue
            if self.pki is None or fresh.cert_pem != self.pki.cert_pem:
                logger.info("[PKI] serving renewed certificate (fingerprint %s)", fresh.fingerprint)
                self.pki = fresh
                self._facts.ca_fingerprint = fresh.fingerprint
                self._facts.ca_pem = fresh.ca_cert_pem.decode()
                if self.nng is not None:
                    await self.nng.reload_tls(_nng_tls(fresh))

    def _may_renew_pki(self) -> bool:
        """Each replica renews its own leaf, but replacing the CA the replicas share (and
        drivers pin) is the leader's: the others reload the CA it wrote."""
        s = self.settings
        leading = self.leadership is None or self.leadership.is_leader
        return leading or not ca_due(s.resolve(s.tls_ca_cert_file))

    async def _start_gateway(self) -> None:
        s = self.settings
        dashboard = Path(s.dashboard_dir).resolve() if s.dashboard_dir else CHECKOUT_DASHBOARD
        config = GatewayConfig(
            grpc_target=self._gateway_target,
            local_calls=self._local_calls,
            qpus_collection=s.qpus_collection,
            timeslots_collection=s.timeslots_collection,
            jobs_collection=s.jobs_collection,
            api_tokens_collection=s.api_tokens_collection,
            notifications_collection=s.notifications_collection,
            qpu_time_requests_collection=s.qpu_time_requests_collection,
            dashboard_dir=dashboard,
            max_body_bytes=max(2 * 1_048_576, s.max_payload_bytes * 2),
        )
        uv_config = uvicorn.Config(
            create_app(config),
            host=s.bind_host,
            port=s.server_port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._uvicorn = server = _GatewayServer(uv_config)
        task = asyncio.create_task(server.serve())
        self._uvicorn_task = task
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"the HTTP gateway could not bind port {s.server_port}")
            await asyncio.sleep(0.01)
        self.http_port = server.servers[0].sockets[0].getsockname()[1]

    async def stop(self, grace: float = 2.0) -> None:
        """Stops listeners and loops; in-flight RPCs get `grace` seconds."""
        if self._uvicorn is not None and self._uvicorn_task is not None:
            self._uvicorn.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._uvicorn_task, timeout=max(grace, 1.0) + 2)
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self.nng is not None:
            await self.nng.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.relay is not None:
            await self.relay.stop()
        if self._db is not None and self.registry is not None:
            # Other replicas need not wait for this one's heartbeat to expire.
            with contextlib.suppress(Exception):
                await self._db.run(self.registry.leave)
        if self.checkpoints is not None:
            await asyncio.to_thread(self.checkpoints.stop)
        if self._loop_connections is not None:
            await self._loop_connections.close()
        if self._db is not None:
            self._db.close()
        if self._qasm is not None:
            self._qasm.close()
        if self._passwords is not None:
            self._passwords.close()
        if self._oauth2_http is not None:
            await self._oauth2_http.close()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def _nng_tls(pki: PkiMaterial) -> TlsMaterial:
    return TlsMaterial((pki.cert_pem + pki.ca_cert_pem).decode(), pki.key_pem.decode())


async def serve(settings: ServerSettings) -> None:
    """Runs the server until SIGINT/SIGTERM."""
    server = QpiServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    _freeze_startup_objects()
    await stop.wait()
    logger.info("shutting down")
    await server.stop()


def _freeze_startup_objects() -> None:
    """Moves everything allocated while starting (modules, Qiskit's and SQLAlchemy's
    tables, the app) out of the cyclic collector's reach: a full collection scans every
    tracked object, and with those it paused a running server for ~80 ms about once every
    few hundred listing requests (measured: a 200-record page's p99). They live as long
    as the process, so the collector has nothing to find among them."""
    gc.collect()
    gc.freeze()


GIL_SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 5 ms).

The database threads give the GIL up for every SQLite call and PostgreSQL round trip and
then wait to take it back from the event loop; a shorter turn bounds that wait. Measured
on SQLite with zero-work drivers (four interleaved runs each, 2-core machine): 146-176
completed jobs/s against 125-158 with the default, and submit→result 10.5-11.0 ms against
11.7-13.9 ms; no difference beyond noise on PostgreSQL, whose waits are round trips."""


def run(settings: ServerSettings) -> None:
    """Entry point used by `qpi serve`."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    asyncio.run(serve(settings))
