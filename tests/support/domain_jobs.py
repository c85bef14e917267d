"""Domain `Job` values for unit tests: a pending job with every field set, and only what a
test is about changed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from qpi.server.domain.models import Job

T0 = datetime(2030, 1, 1, tzinfo=UTC)

_PENDING = Job(
    id="j1",
    user_id="u1",
    qpu_id="q1",
    request_id=None,
    payload_json="{}",
    state="pending",
    result_json=None,
    error=None,
    attempt=0,
    lease_driver_id=None,
    charged_seconds=0.0,
    estimated_seconds=0.0,
    created=T0,
    updated=T0,
    started_at=None,
    finished_at=None,
)


def make_job(**changes: Any) -> Job:
    """A pending job "j1" of user "u1" on QPU "q1", created at T0, with `changes`."""
    return dataclasses.replace(_PENDING, **changes)


def running_job(**changes: Any) -> Job:
    """`make_job` leased once: running since T0 on driver "d1"."""
    return make_job(state="running", attempt=1, lease_driver_id="d1", started_at=T0, **changes)
