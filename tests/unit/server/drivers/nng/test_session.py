"""Flow control of NNG sessions: a cancelled job keeps the driver's only slot busy."""

from __future__ import annotations

import time

from qpi.server.drivers.nng.session import NngSession
from qpi.server.drivers.session import Ack, Revoke


def _session(drain: float = 30.0) -> NngSession:
    return NngSession(
        driver_id="d", qpu_id="q", name="n", executor="mock", transport="nng", drain_seconds=drain
    )


def test_a_revoked_job_holds_capacity_until_its_result_arrives() -> None:
    session = _session()
    session.leases.add(("j1", 1))
    assert session.free_capacity() == 0
    # What the hub does on cancel: drop the lease, then tell the transport.
    session.leases.discard(("j1", 1))
    session.send(Revoke("j1", 1, "cancelled"))
    assert session.free_capacity() == 0
    assert session.finish_draining("j1") is True
    assert session.free_capacity() == 1
    assert session.finish_draining("j1") is False


def test_a_drain_expires_for_a_driver_that_never_answers() -> None:
    session = _session(drain=5.0)
    session.send(Revoke("j1", 1, "cancelled"))
    assert session.expire_drains(time.monotonic() + 1) is False
    assert session.free_capacity() == 0
    assert session.expire_drains(time.monotonic() + 6) is True
    assert session.free_capacity() == 1


def test_other_commands_pass_through_untouched() -> None:
    session = _session()
    session.send(Ack("j1", 1, True))
    assert session.draining == {}
    assert session.outbox.get_nowait() == Ack("j1", 1, True)
    session.close()
    assert session.free_capacity() == 0
