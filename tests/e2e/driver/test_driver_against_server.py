"""The driver daemon (`qpi-driver start`) against the real `qpi serve`, both as subprocesses.

The server serves gRPC over TLS with its own CA; every driver pins that CA by fingerprint.
Fixtures (`serve`, `own_server`, `user_token`, `launch_driver`) live in conftest.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qpi.sdk.errors import FailedPreconditionError, InvalidArgumentError, InvalidQasmError
from qpi.sdk.models import Job
from tests.e2e.driver.conftest import LaunchDriver
from tests.support.processes import (
    DriverProcess,
    ServeProcess,
    live_group_members,
    pid_alive,
    wait_until,
)

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


# A parameterised circuit submitted without parameter values: only the executor binds.
UNBOUND = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
"""


def wide_circuit(num_qubits: int, layers: int = 1) -> str:
    """A QASM 2 circuit entangling `num_qubits` qubits, measuring only the first two."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{num_qubits}];", "creg c[2];"]
    for _ in range(layers):
        lines += [f"h q[{i}];" for i in range(num_qubits)]
        lines += [f"cx q[{i}],q[{i + 1}];" for i in range(num_qubits - 1)]
        lines += [f"rz(0.3) q[{i}];" for i in range(num_qubits)]
    lines += ["measure q[0] -> c[0];", "measure q[1] -> c[1];"]
    return "\n".join(lines) + "\n"


# Several 14-qubit circuits with many shots: a few seconds of simulation per job on the
# mock executor, so there is time to kill the driver or stop the server mid-job.
SLOW_CIRCUITS = [wide_circuit(14, layers=25)] * 6
SLOW_SHOTS = 100_000


def assert_bell_result(job: Job, shots: int, backend: str) -> None:
    assert job.state == "completed", job.error
    result = job.result
    assert result is not None
    assert {"shots", "backend", "success", "circuit_results", "counts"} <= set(result)
    assert result["shots"] == shots
    assert result["backend"] == backend
    assert result["success"] is True
    assert len(result["circuit_results"]) == 1
    assert result["circuit_results"][0]["counts"] == result["counts"]
    counts = result["counts"]
    assert set(counts) == {"00", "01", "10", "11"}
    assert sum(counts.values()) == shots
    assert counts["01"] == counts["10"] == 0  # ideal simulators: only |00> and |11>
    assert abs(counts["00"] - shots / 2) < shots * 0.1, counts


def submit_slow(serve: ServeProcess, token: str, qpu: str) -> Job:
    return serve.user(token).submit_job(circuits=SLOW_CIRCUITS, shots=SLOW_SHOTS, qpu_target=qpu)


def wait_running(serve: ServeProcess, token: str, job_id: str, timeout: float = 30) -> None:
    client = serve.user(token)
    wait_until(lambda: client.get_job(job_id).state == "running", timeout, f"{job_id} running")


def assert_slow_result(job: Job) -> None:
    assert job.state == "completed", job.error
    assert job.result is not None
    entries = job.result["circuit_results"]
    assert len(entries) == len(SLOW_CIRCUITS)
    for entry in entries:
        assert entry["shots"] == SLOW_SHOTS
        assert sum(entry["counts"].values()) == SLOW_SHOTS


def group_alive(driver: DriverProcess) -> bool:
    assert driver.proc is not None
    return bool(live_group_members(driver.proc.pid))


# -- (a) simulators ------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["mock", "qiskit_aer"])
def test_simulator_runs_a_bell_circuit(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver, executor: str
) -> None:
    driver = launch_driver(serve, executor=executor)
    assert driver.ca_file.read_bytes().strip() == serve.ca_pem.strip()  # pinned CA stored
    job = serve.submit(user_token, BELL, qpu=driver.name, shots=2000)
    done = serve.wait(user_token, job.id, timeout=60)
    assert_bell_result(done, 2000, executor)
    assert done.attempt == 1
    assert done.charged_seconds > 0
    assert driver.terminate() == 0, driver.log()


CONFIGS = Path(__file__).resolve().parents[3] / "driver" / "qpi" / "driver" / "configs"


@pytest.mark.hardware_sim
@pytest.mark.timeout(300)  # the driver warms quantify up before going online
def test_quantify_on_a_dummy_cluster_runs_a_bell_circuit(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(
        serve,
        executor="quantify",
        num_qubits=3,
        extra_args=(
            "--is-dummy",
            "--quantify-device-config",
            str(CONFIGS / "quantify.device.example.yml"),
            "--quantify-hardware-config",
            str(CONFIGS / "quantify.hardware.example.json"),
        ),
    )
    job = serve.submit(user_token, BELL, qpu=driver.name, shots=500)
    done = serve.wait(user_token, job.id, timeout=120)
    assert_bell_result(done, 500, "quantify")
    assert driver.terminate() == 0, driver.log()


@pytest.mark.hardware_sim
@pytest.mark.timeout(300)  # the driver warms quantify up before going online
def test_qblox_on_a_dummy_cluster_runs_jobs_and_fails_bad_ones_precisely(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(
        serve,
        executor="qblox",
        num_qubits=3,
        extra_args=(
            "--is-dummy",
            "--quantify-device-config",
            str(CONFIGS / "qblox.device.example.yml"),
            "--quantify-hardware-config",
            str(CONFIGS / "qblox.hardware.example.json"),
        ),
    )
    client = serve.user(user_token)
    job = serve.submit(user_token, BELL, qpu=driver.name, shots=500)
    assert_bell_result(serve.wait(user_token, job.id, timeout=120), 500, "qblox")

    # Two circuits with their own shots; |q1 q0> = |01> after x q[0].
    x_on_0 = BELL.replace("h q[0];\ncx q[0],q[1];", "x q[0];")
    two = client.submit_job(circuits=[BELL, {"circuit": x_on_0, "shots": 40}], shots=100,
                            qpu_target=driver.name)  # fmt: skip
    done = client.wait(two.id, timeout=120)
    assert done.state == "completed", done.error
    assert done.result is not None
    first, second = done.result["circuit_results"]
    assert first["shots"] == 100
    assert sum(first["counts"].values()) == 100
    assert second["counts"] == {"00": 0, "01": 40, "10": 0, "11": 0}

    # meas_level 1: one IQ pair per shot and clbit.
    iq = client.submit_job(circuits=[BELL], shots=16, meas_level=1, qpu_target=driver.name)
    done = client.wait(iq.id, timeout=120)
    assert done.state == "completed", done.error
    assert done.result is not None
    memory = done.result["circuit_results"][0]["memory"]
    assert [len(memory), len(memory[0]), len(memory[0][0])] == [16, 2, 2]

    # A gate the device cannot run fails precisely; the driver keeps serving.
    rzz = BELL.replace("cx q[0],q[1];", "rzz(0.2) q[0],q[1];")
    bad = client.submit_job(circuits=[rzz], shots=100, qpu_target=driver.name)
    failed = client.wait(bad.id, timeout=120)
    assert failed.state == "failed"
    assert "Gate 'rzz' is not supported by the qblox executor" in failed.error
    again = serve.submit(user_token, BELL, qpu=driver.name, shots=200)
    assert_bell_result(serve.wait(user_token, again.id, timeout=120), 200, "qblox")
    assert driver.alive()
    assert serve.qpu_status(driver.name) == "online"
    assert driver.terminate() == 0, driver.log()


# -- (b) hardware executors that cannot run circuits ------------------------------------------


def test_presto_fails_jobs_as_not_implemented(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, executor="presto")
    for _ in range(2):
        job = serve.submit(user_token, BELL, qpu=driver.name, shots=100)
        done = serve.wait(user_token, job.id, timeout=60)
        assert done.state == "failed"
        assert "presto" in done.error
        assert "not implemented" in done.error
    assert driver.alive()


# -- (c) bad circuits -------------------------------------------------------------------------


def test_bad_circuits_fail_with_a_reason_and_the_driver_keeps_working(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    # The QPU is registered larger than the mock executor (16 qubits): the driver's hello
    # lowers it to the device's size, so a 20-qubit circuit is refused at submit like a
    # meas_level the executor did not announce (issue 11 items 1 and 7).
    driver = launch_driver(serve, executor="mock", num_qubits=32)
    client = serve.user(user_token)
    assert client.get_qpu(driver.name).num_qubits == 16
    with pytest.raises(InvalidArgumentError) as too_wide:
        client.submit_job(circuits=[wide_circuit(20)], qpu_target=driver.name)
    assert "needs 20 qubits" in str(too_wide.value)
    with pytest.raises(FailedPreconditionError) as no_traces:
        client.submit_job(circuits=[BELL], meas_level=0, qpu_target=driver.name)
    assert no_traces.value.reason == "MEAS_LEVEL_UNSUPPORTED"

    # A syntax error never reaches the driver: the server refuses it at submit time.
    with pytest.raises(InvalidQasmError) as refused:
        client.submit_job(circuits=[BELL.replace("cx q[0],q[1];", "cx q[0] q[1];")],
                          qpu_target=driver.name)  # fmt: skip
    assert "Circuit 0 is not valid OpenQASM 2" in str(refused.value)
    with pytest.raises(InvalidQasmError) as unknown_gate:
        client.submit_job(circuits=[BELL.replace("h q[0];", "frobnicate q[0];")],
                          qpu_target=driver.name)  # fmt: skip
    assert "frobnicate" in str(unknown_gate.value)

    # What only the executor can find out: it binds parameters, the server does not.
    bad = client.submit_job(circuits=[UNBOUND], shots=100, qpu_target=driver.name)
    failed = client.wait(bad.id, timeout=60)
    assert failed.state == "failed"
    assert "circuit 0 has unbound parameters: theta" in failed.error
    assert failed.result is None or not failed.result.get("success")

    good = client.submit_job(circuits=[BELL], shots=1000, qpu_target=driver.name)
    assert_bell_result(client.wait(good.id, timeout=60), 1000, "mock")
    assert driver.alive()


# -- (d) a driver killed mid-job ----------------------------------------------------------------


def test_sigkilled_driver_restarts_and_every_job_completes_once(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    extra = ("--job-timeout", "0")
    driver = launch_driver(serve, executor="mock", num_qubits=16, extra_args=extra)
    client = serve.user(user_token)
    slow = submit_slow(serve, user_token, driver.name)
    bells = [client.submit_job(circuits=[BELL], shots=500, qpu_target=driver.name)
             for _ in range(4)]  # fmt: skip
    wait_running(serve, user_token, slow.id)
    time.sleep(0.5)  # well inside the multi-second simulation

    driver.kill()  # the daemon, its group and its executor worker: like a machine crash
    assert not group_alive(driver)
    # The server notices the dead stream and returns the lease to the queue.
    wait_until(lambda: client.get_job(slow.id).state == "pending", 15, "slow job requeued")
    assert client.get_job(slow.id).attempt == 1

    again = launch_driver(serve, name=driver.name, token=driver.token, extra_args=extra)
    finished = {job.id: client.wait(job.id, timeout=90) for job in [slow, *bells]}

    assert_slow_result(finished[slow.id])
    assert finished[slow.id].attempt == 2  # leased twice, completed once
    for bell in bells:
        assert_bell_result(finished[bell.id], 500, "mock")
    # The daemon prefetches one job (--prefetch 1): the first bell may have waited queued
    # behind the slow job, so the crash returned it too. Leased at most twice, run once.
    assert sorted(finished[b.id].attempt for b in bells) in ([1, 1, 1, 1], [1, 1, 1, 2])
    qpu_id = finished[slow.id].qpu_id
    states = [job.state for job in client.list_jobs(qpu_id=qpu_id)]
    assert sorted(states) == ["completed"] * 5  # nothing duplicated, nothing stuck
    # Results do not change afterwards (no late second acceptance).
    time.sleep(1.0)
    assert client.get_job(slow.id).result == finished[slow.id].result
    assert client.get_job(slow.id).attempt == 2
    assert again.terminate() == 0, again.log()


def test_executor_worker_does_not_outlive_a_sigkilled_daemon(
    serve: ServeProcess, user_token: str, launch_driver: LaunchDriver
) -> None:
    driver = launch_driver(serve, executor="mock", num_qubits=16, extra_args=("--job-timeout", "0"))
    slow = submit_slow(serve, user_token, driver.name)
    wait_running(serve, user_token, slow.id)
    started = driver.kill(orphans=False)  # a real `kill -9` of the daemon's process group
    assert started, "the daemon had started no worker process"
    time.sleep(1.0)  # the slow job needs several more seconds
    survivors = [pid for pid in started if pid_alive(pid)]
    assert not survivors, f"processes of the killed driver still running: {survivors}"


# -- (e) the server goes away for a while --------------------------------------------------------


def test_driver_reconnects_after_server_restart(
    own_server: ServeProcess, launch_driver: LaunchDriver
) -> None:
    server = own_server
    token = server.create_user("restart-user@example.com")
    driver = launch_driver(server, executor="mock", num_qubits=16)
    client = server.user(token)
    slow = submit_slow(server, token, driver.name)
    queued = [client.submit_job(circuits=[BELL], shots=400, qpu_target=driver.name)
              for _ in range(2)]  # fmt: skip
    wait_running(server, token, slow.id)

    assert server.stop() is not None
    time.sleep(10)
    assert driver.alive(), driver.log()
    server.restart()

    driver.wait_connected(timeout=60)  # by itself: the test never touches the driver
    client = server.user(token)
    fresh = client.submit_job(circuits=[BELL], shots=300, qpu_target=driver.name)

    assert_slow_result(client.wait(slow.id, timeout=90))
    for job in queued:
        assert_bell_result(client.wait(job.id, timeout=60), 400, "mock")
    assert_bell_result(client.wait(fresh.id, timeout=60), 300, "mock")
    assert driver.alive()
    assert driver.terminate() == 0, driver.log()
