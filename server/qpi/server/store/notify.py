"""PostgreSQL `LISTEN`/`NOTIFY`: the wire between replicas sharing one database.

Two dedicated connections outside the engine's pool, each driven by its own thread so
neither the event loop nor the database workers ever wait on them: one sends batches of
`pg_notify`, one blocks in `LISTEN`. Both reconnect by themselves after an outage.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import psycopg
import tenacity
from psycopg import sql
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

CHANNEL = "qpi_events"
"""The notification channel (per database, so clusters on other databases never mix)."""

MAX_PAYLOAD_BYTES = 7_900
"""PostgreSQL refuses payloads of 8,000 bytes or more."""

LISTENER_APPLICATION = "qpi-relay-listener"
"""`application_name` of the LISTEN connections (operators and tests find them by it)."""

_BATCH = 500
_SEND = "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p"
_LISTEN = sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL))


def conninfo(engine: Engine) -> str:
    """The libpq URL of the engine's database (psycopg, without SQLAlchemy's driver tag)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connector(stop: threading.Event) -> tenacity.Retrying:
    """Retries a connection attempt with back-off until it succeeds or `stop` is set."""

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # a stop request cuts the back-off short

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(psycopg.OperationalError),
        wait=tenacity.wait_exponential_jitter(initial=0.1, max=5.0),
        stop=lambda _state: stop.is_set(),
        sleep=sleep,
        before_sleep=lambda state: logger.warning(
            "[Notify] cannot reach PostgreSQL (attempt %d); retrying", state.attempt_number
        ),
    )


class Notifier:
    """Sends payloads on :data:`CHANNEL` from a background thread, in batches."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qpi-notify", daemon=True)

    def start(self) -> None:
        """Starts the sending thread."""
        self._thread.start()

    def send(self, payload: str) -> None:
        """Queues one payload (from any thread; never blocks)."""
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            logger.error("[Notify] dropping a %d-byte payload", len(payload.encode()))
            return
        self._queue.put(payload)

    def stop(self) -> None:
        """Sends what is queued (unless the database is unreachable), then stops."""
        self._queue.put(None)
        self._thread.join(2)
        self._stop.set()
        self._thread.join(5)

    def _next_batch(self) -> list[str] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        # Everything queued meanwhile goes in the same round trip.
        while len(batch) < _BATCH:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(more)
        return batch

    def _run(self) -> None:
        connect = _connector(self._stop)
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        try:
            while (batch := self._next_batch()) is not None:
                while not self._stop.is_set():
                    try:
                        if conn is None:
                            conn = connect(psycopg.connect, self._url, autocommit=True)
                        conn.execute(_SEND, (CHANNEL, batch))
                        break
                    except tenacity.RetryError:
                        return  # stopped while the database was away
                    except psycopg.Error:
                        # Resend the batch on a new connection: events are wake-up hints,
                        # so a late or repeated one is harmless, a lost one is not.
                        logger.warning("[Notify] sending failed; reconnecting", exc_info=True)
                        if conn is not None:
                            conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()


class Listener:
    """Receives payloads of :data:`CHANNEL` in a background thread.

    `on_message(payload)` and `on_connected()` (after every successful LISTEN, the first
    included) run in that thread.
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[str], None],
        on_connected: Callable[[], None],
        tag: str,
    ) -> None:
        self._url = url
        self._on_message = on_message
        self._on_connected = on_connected
        self._application = f"{LISTENER_APPLICATION}:{tag}"
        self._stop = threading.Event()
        self.listening = threading.Event()
        """Set once the first LISTEN is in place."""
        self._thread = threading.Thread(target=self._run, name="qpi-listen", daemon=True)

    def start(self) -> None:
        """Starts listening."""
        self._thread.start()

    def stop(self) -> None:
        """Stops listening (within the poll timeout)."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        connect = _connector(self._stop)
        while not self._stop.is_set():
            try:
                conn = connect(
                    psycopg.connect,
                    self._url,
                    autocommit=True,
                    application_name=self._application,
                )
            except tenacity.RetryError:
                return  # stopped while the database was away
            try:
                with conn:
                    conn.execute(_LISTEN)
                    self.listening.set()
                    self._on_connected()
                    while not self._stop.is_set():
                        # The timeout only bounds how late a stop is noticed.
                        for notify in conn.notifies(timeout=0.5):
                            self._handle(notify.payload)
            except psycopg.Error:
                logger.warning("[Notify] LISTEN connection lost; reconnecting")

    def _handle(self, payload: str) -> None:
        try:
            self._on_message(payload)
        except Exception:  # one bad message must not end the listening thread
            logger.exception("[Notify] handling a notification failed")
