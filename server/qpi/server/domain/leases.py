"""Reconciling a driver's leases: what the server leases to it against what it holds.

Every heartbeat lists the jobs the driver holds (running, queued, or finished with a result
not yet acknowledged). The server compares that with the leases the database gives the
driver and with its own view of the session:

* a job the driver holds that the database no longer leases to it (requeued, cancelled,
  already stored) is cancelled on the driver;
* a lease the driver confirmed (accepted, or resumed at hello) but no longer reports was
  lost on the driver (e.g. its worker died without a word) and goes back to the queue;
* a confirmed lease the database no longer has is forgotten, freeing the driver's capacity.

Only *confirmed* leases are judged: an assignment still in flight is not yet in the
driver's report, and the stream's ordering guarantees that a report processed after the
acceptance reflects it. Likewise a job whose result was just acknowledged may still be
listed by a heartbeat sent before the acknowledgement arrived: it is not cancelled.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

Lease = tuple[str, int]
"""(job id, attempt)."""


@dataclass(frozen=True)
class Reconciliation:
    """What to do after one heartbeat."""

    cancel_on_driver: frozenset[Lease]
    requeue: frozenset[Lease]
    forget: frozenset[Lease]


def reconcile(
    *,
    held: Set[Lease],
    leased: Set[Lease],
    confirmed: Set[Lease],
    answered: Set[Lease] = frozenset(),
) -> Reconciliation:
    """Decides how to bring the driver, the database and the session back in line.

    Args:
        held: What the driver reports holding.
        leased: What the database leases to this driver right now.
        confirmed: Leases the driver acknowledged in this session.
        answered: Results acknowledged to the driver whose acknowledgement it may not have
            read yet.
    """
    return Reconciliation(
        cancel_on_driver=frozenset(held - leased - answered),
        requeue=frozenset((confirmed & leased) - held),
        forget=frozenset(confirmed - leased),
    )
