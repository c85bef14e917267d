"""Jobs to run through a fault, and the invariants every fault test checks afterwards.

After any fault: every job ends exactly once in a terminal state, nothing stays `running`
or `pending`, results do not change afterwards (no late second acceptance) and the user's
balance equals the initial balance minus the sum of the charges.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from qpi.sdk import QPIClient
from qpi.sdk.models import Job
from tests.support.processes import ServeProcess, wait_until

INITIAL_BALANCE = 100_000.0


def wide_circuit(num_qubits: int, layers: int) -> str:
    """A QASM 2 circuit entangling `num_qubits` qubits, measuring the first two."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{num_qubits}];", "creg c[2];"]
    for _ in range(layers):
        lines += [f"h q[{i}];" for i in range(num_qubits)]
        lines += [f"cx q[{i}],q[{i + 1}];" for i in range(num_qubits - 1)]
        lines += [f"rz(0.3) q[{i}];" for i in range(num_qubits)]
    lines += ["measure q[0] -> c[0];", "measure q[1] -> c[1];"]
    return "\n".join(lines) + "\n"


# Tens of milliseconds of simulation each: a steady stream of results during a fault.
SHORT = [wide_circuit(12, layers=10)]
SHORT_SHOTS = 50_000
# About a quarter of a second per circuit on the mock executor (more on a loaded machine).
SLOW_CIRCUIT = wide_circuit(14, layers=25)
SLOW_SHOTS = 100_000


@dataclass
class Tenant:
    """A user with a balance, seen through their own SDK client."""

    email: str
    client: QPIClient


def new_tenant(server: ServeProcess, email: str) -> Tenant:
    """Creates a user with INITIAL_BALANCE QPU seconds."""
    token = server.create_user(email, qpu_seconds=INITIAL_BALANCE)
    return Tenant(email, server.user(token))


def submit_short(tenant: Tenant, qpu: str, count: int) -> list[str]:
    """Submits `count` short jobs; returns their ids."""
    return [
        tenant.client.submit_job(circuits=SHORT, shots=SHORT_SHOTS, qpu_target=qpu).id
        for _ in range(count)
    ]


def submit_slow(tenant: Tenant, qpu: str, circuits: int = 6) -> str:
    """Submits one job of `circuits` slow circuits (seconds of work)."""
    job = tenant.client.submit_job(
        circuits=[SLOW_CIRCUIT] * circuits, shots=SLOW_SHOTS, qpu_target=qpu
    )
    return job.id


def wait_state(tenant: Tenant, job_id: str, state: str, timeout: float = 60) -> None:
    """Waits until a job reaches `state`."""
    wait_until(lambda: tenant.client.get_job(job_id).state == state, timeout, f"{job_id} {state}")


def wait_all(tenant: Tenant, job_ids: Sequence[str], timeout: float) -> dict[str, Job]:
    """Waits for every job to be terminal within one overall deadline."""
    deadline = time.monotonic() + timeout
    done: dict[str, Job] = {}
    for job_id in job_ids:
        remaining = max(deadline - time.monotonic(), 1.0)
        done[job_id] = tenant.client.wait(job_id, timeout=remaining)
    return done


def assert_ended_exactly_once(
    server: ServeProcess, tenant: Tenant, job_ids: Sequence[str], timeout: float = 120
) -> dict[str, Job]:
    """The invariants after a fault; returns the finished jobs."""
    finished = wait_all(tenant, job_ids, timeout)
    for job in finished.values():
        assert job.state == "completed", (job.id, job.state, job.error)
        assert job.attempt >= 1
        assert job.charged_seconds > 0
        assert job.result is not None
        for entry in job.result["circuit_results"]:
            assert sum(entry["counts"].values()) == entry["shots"]
    admin = server.admin()
    stuck = [
        (job.id, job.state)
        for job in admin.list_jobs(states=["running", "pending"], all_users=True)
        if job.id in finished
    ]
    assert not stuck, f"jobs left unfinished: {stuck}"
    # A late second acceptance would change a result or its charge after the fact.
    time.sleep(1.0)
    for job_id, job in finished.items():
        again = tenant.client.get_job(job_id)
        assert (again.state, again.attempt, again.charged_seconds) == (
            job.state,
            job.attempt,
            job.charged_seconds,
        )
        assert again.result == job.result
    me = tenant.client.get_current_user()
    charged = sum(job.charged_seconds for job in finished.values())
    assert abs(INITIAL_BALANCE - charged - me.qpu_seconds) < 1e-6, (me.qpu_seconds, charged)
    return finished
