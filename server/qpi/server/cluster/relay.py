"""Cluster event relay: every replica's event bus sees the others' events.

Replicas share one PostgreSQL database, so the database carries the events: what a
replica publishes locally is also sent with `NOTIFY` as a small message (topic, ids and
the sender's origin id, never a result), and each replica re-publishes what the others
sent. Messages are wake-up hints, not data: whoever needs the full object reads the
database, which was committed before the event was published.

Every topic crosses replicas, each for a reason:

- "dispatch": a job submitted on A must wake the QPU loop on B, where its driver is;
- "freed": a job that ended through A starts its booker's idle time on B's QPU loop;
- "cancel": the lease being revoked may be held by a driver connected to B;
- "job": WatchJob, `wait()` and SSE on B follow jobs submitted or finished through A (the
  job is re-read on B, and only if someone there watches);
- "qpu", "qpu_toggled", "qpu_deleted", "driver": QPU feeds, and drivers connected to B of
  a QPU disabled or deleted through A;
- "notification", "notification_deleted": the dashboards' feeds;
- "bookings": B's dispatcher re-judges prefetched jobs against a booking made through A
  (a prefetched job must not jump it);
- "credentials": streams on B of a user revoked through A end at once, and B's
  authentication cache forgets them.

A replica alone sends nothing but a heartbeat: replicas announce themselves ("hello")
when they start and every few seconds, and events are sent only while another replica
has been heard from recently (or during the first moments after start, before the
others answered). A replica that learns of a new peer catches up as after a reconnect.

After the LISTEN connection is re-established (database outage, terminated backend),
every local QPU loop and every watched job is woken, since messages sent meanwhile are
lost (the dispatcher's safety poll remains the last resort). Both retry what the database
cannot answer yet: a failed dispatch round, and a watched job's re-read for as long as it
is watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import tenacity

from qpi.server.domain.errors import UnavailableError
from qpi.server.domain.models import Job, Qpu, Revocation
from qpi.server.services.database import Database
from qpi.server.services.events import (
    BOOKINGS_TOPIC,
    CREDENTIALS_TOPIC,
    FREED_TOPIC,
    EventBus,
)
from qpi.server.store.notify import Listener, Notifier

logger = logging.getLogger(__name__)

_IDS = (
    "dispatch",
    FREED_TOPIC,
    "qpu",
    "qpu_toggled",
    "driver",
    "notification",
    "notification_deleted",
    CREDENTIALS_TOPIC,
    BOOKINGS_TOPIC,
)
"""Topics whose payload is already a plain id (or "*")."""

_EPOCH = datetime.fromtimestamp(0, UTC)

HELLO = "_hello"
"""A replica announcing itself (payload: whether everyone should catch up)."""
PEER_TTL = 30.0
"""Seconds without hearing from any other replica after which events stop being sent
(replicas say hello six times as often)."""
START_GRACE = 2.0
"""Seconds after start during which events are sent before any replica answered: a live
replica answers a hello within milliseconds, and one heard later triggers a catch-up on
both sides anyway. (Sending for a whole PEER_TTL cost a lone server a NOTIFY per job
event for its first half minute.)"""
REREAD_BACKOFF = tenacity.wait_exponential_jitter(initial=0.05, max=2.0)
"""Between attempts to re-read a watched job the database could not give (an outage)."""


def encode(topic: str, payload: Any) -> Any:
    """The wire form of an event's payload; None for events that stay local."""
    if topic in _IDS:
        return str(payload)
    if topic == "job" and isinstance(payload, Job):
        return payload.id  # re-read on arrival: results never travel in a notification
    if topic == "cancel" and isinstance(payload, Revocation):
        return [payload.job_id, payload.attempt, payload.driver_id]
    if topic == "qpu_deleted" and isinstance(payload, Qpu):
        return [payload.id, payload.name]
    return None


def decode(topic: str, wire: Any) -> Any:
    """The local payload of a relayed event (for "job": the id, to be re-read)."""
    if topic == "cancel":
        job_id, attempt, driver_id = wire
        return Revocation(str(job_id), int(attempt), str(driver_id))
    if topic == "qpu_deleted":
        # The QPU row is gone; its drivers' sessions only need its id and name.
        qpu_id, name = wire
        return Qpu(str(qpu_id), str(name), False, "offline", 0, (), (), "", _EPOCH, _EPOCH)
    return str(wire)


class EventRelay:
    """Forwards local events to the other replicas and publishes theirs locally."""

    def __init__(
        self,
        url: str,
        events: EventBus,
        db: Database,
        read_job: Callable[[str], Job | None],
        peer_ttl: float = PEER_TTL,
    ) -> None:
        self.origin = uuid.uuid4().hex[:12]
        """This process's id in messages (a replica ignores its own)."""
        self._events = events
        self._db = db
        self._read_job = read_job
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier = Notifier(url)
        self._listener = Listener(url, self._received, self._reconnected, self.origin)
        # Jobs being re-read, and those changed again meanwhile (read once more after):
        # one read at a time per job keeps a job's relayed states in order.
        self._reading: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._peers: dict[str, float] = {}  # origin -> when last heard (monotonic)
        # Events are sent until then: while peers are alive, and for START_GRACE after
        # start() (they may not have answered this replica's hello yet). Nothing is sent
        # before start() registers the relay with the bus.
        self._peer_ttl = peer_ttl
        self._send_until = 0.0
        self.connections = 0
        """LISTEN connections made so far (1 after start; more after reconnects)."""

    async def start(self, timeout: float = 10.0) -> None:
        """Starts relaying, on the event loop the bus is bound to; waits (at most
        `timeout` seconds) until this replica hears the others."""
        self._loop = asyncio.get_running_loop()
        self._notifier.start()
        self._listener.start()
        self._events.relay_to(self._send)
        if not await asyncio.to_thread(self._listener.listening.wait, timeout):
            logger.warning("[Relay] not listening yet; other replicas' events wait for it")
        # The grace counts from when the others can hear this replica's hello.
        self._send_until = max(
            self._send_until, time.monotonic() + min(self._peer_ttl, START_GRACE)
        )
        self._keep(self._heartbeats())

    @property
    def sending(self) -> bool:
        """Whether events are sent now (another replica was heard from lately)."""
        return time.monotonic() < self._send_until

    async def _heartbeats(self) -> None:
        self._hello(catch_up=False)
        while True:
            await asyncio.sleep(self._peer_ttl / 6)
            self._hello(catch_up=False)
            stale = time.monotonic() - 10 * self._peer_ttl
            for origin in [o for o, seen in self._peers.items() if seen < stale]:
                del self._peers[origin]

    def _hello(self, *, catch_up: bool) -> None:
        self._notifier.send(json.dumps({"o": self.origin, "t": HELLO, "p": catch_up}))

    async def stop(self) -> None:
        """Stops relaying (on the bus's event loop); queued messages are still sent."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.to_thread(self._listener.stop)
        await asyncio.to_thread(self._notifier.stop)

    # -- outgoing (any thread) ----------------------------------------------------------

    def _send(self, topic: str, payload: Any) -> None:
        if not self.sending:
            return  # alone: nobody to tell
        wire = encode(topic, payload)
        if wire is not None:
            self._notifier.send(json.dumps({"o": self.origin, "t": topic, "p": wire}))

    # -- incoming (listener thread, then the event loop) --------------------------------

    def _received(self, text: str) -> None:
        try:
            message = json.loads(text)
            origin, topic = message["o"], message["t"]
            if origin == self.origin:
                return
            self._heard(str(origin))
            if topic == HELLO:
                if message["p"]:
                    self._on_loop(self._resync)
                return
            payload = decode(topic, message["p"])
        except (ValueError, KeyError, TypeError):
            logger.warning("[Relay] ignoring a malformed message: %.200s", text)
            return
        self._on_loop(self._deliver, topic, payload)

    def _heard(self, origin: str) -> None:
        """Notes a message from another replica (listener thread)."""
        now = time.monotonic()
        last = self._peers.get(origin)
        self._peers[origin] = now
        self._send_until = max(self._send_until, now + self._peer_ttl)
        if last is None or last < now - self._peer_ttl:
            # A new (or returning) replica: tell it about us at once, and have everyone
            # catch up on what was not sent to whom meanwhile.
            logger.info("[Relay] replica %s joined", origin)
            self._hello(catch_up=True)
            self._on_loop(self._resync)

    def _reconnected(self) -> None:
        self.connections += 1
        if self.connections > 1:
            logger.info("[Relay] listening again; waking dispatch loops and watchers")
            self._on_loop(self._resync)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, topic: str, payload: Any) -> None:
        if topic == "job":
            if self._events.job_watched(payload):
                self._refresh(payload)
            return
        self._events.publish(topic, payload, relayed=True)

    def _resync(self) -> None:
        self._events.publish("dispatch", "*", relayed=True)
        for job_id in self._events.watched_jobs():
            self._refresh(job_id)

    def _refresh(self, job_id: str) -> None:
        if job_id in self._reading:
            self._reading[job_id] = True  # read again once the current read is done
            return
        self._reading[job_id] = False
        self._keep(self._reread(job_id))

    def _keep(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reread(self, job_id: str) -> None:
        try:
            while True:
                try:
                    job = await self._read_while_watched(job_id)
                except tenacity.RetryError:
                    return  # nobody here watches the job any more
                except Exception:  # a watcher still has the safety of its own deadline
                    logger.warning("[Relay] could not re-read job %s", job_id, exc_info=True)
                    job = None
                if job is not None:
                    self._events.publish("job", job, relayed=True)
                if not self._reading.get(job_id):
                    return
                self._reading[job_id] = False
        finally:
            self._reading.pop(job_id, None)

    async def _read_while_watched(self, job_id: str) -> Job | None:
        """The job as stored, read again while the database is unavailable (its
        events sent meanwhile are lost, so this read is the watchers' only news) for as
        long as someone here watches it.

        Raises:
            tenacity.RetryError: the last watcher left before a read succeeded.
        """
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(UnavailableError),
            wait=REREAD_BACKOFF,
            stop=lambda _: not self._events.job_watched(job_id),
            before_sleep=lambda state: logger.warning(
                "[Relay] could not re-read job %s (attempt %d): %s",
                job_id,
                state.attempt_number,
                state.outcome.exception() if state.outcome else None,
            ),
        )
        job: Job | None = await retrying(self._db.run, self._read_job, job_id)
        return job
