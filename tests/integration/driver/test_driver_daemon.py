"""End-to-end tests of the daemon against the fake DriverService."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fake_driver_server import TOKEN, FakeDriverServer, bell_payload

from qpi.driver.bootstrap import Endpoint
from qpi.driver.daemon import DriverDaemon
from qpi.driver.settings import DriverSettings
from qpi.v1 import job_pb2

SCRIPTED = "driver_test_executors:ScriptedExecutor"


def scripted(command: str, shots: int = 10) -> job_pb2.JobPayload:
    return bell_payload(shots=shots, qasm=command)


def executions(tmp_path: Path) -> list[str]:
    log = tmp_path / "data" / "executions.log"
    return log.read_text().split() if log.exists() else []


async def test_hello_job_result_ack_and_heartbeats(fake_server: FakeDriverServer, start_daemon):
    running = await start_daemon(executor="mock")
    hello = fake_server.hellos[0]
    assert (hello.executor, hello.capacity, hello.executes_jobs) == ("mock", 1, True)
    assert hello.num_qubits == 16
    assert "cx" in hello.native_gates
    fake_server.assign("job1", bell_payload(shots=1000))
    await fake_server.wait_for(lambda: "job1" in fake_server.results)
    accepted = fake_server.kinds("job_accepted")
    assert [(a.job_id, a.attempt) for a in accepted] == [("job1", 1)]
    result = fake_server.results["job1"]
    assert 0 < result.execution_seconds < 5
    body = json.loads(result.result_json)
    assert set(body["counts"]) == {"00", "01", "10", "11"}
    assert body["counts"]["00"] + body["counts"]["11"] == 1000
    await fake_server.wait_for(lambda: not running.daemon.unacked)
    await fake_server.wait_for(lambda: len(fake_server.kinds("heartbeat")) >= 2)
    assert await running.stop() == 0
    assert fake_server.kinds("goodbye")


async def test_user_errors_are_sent_verbatim(fake_server: FakeDriverServer, start_daemon):
    await start_daemon(executor="mock")
    fake_server.assign("bad", scripted("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];"))
    fake_server.assign("lvl0", bell_payload(meas_level=0))
    await fake_server.wait_for(lambda: {"bad", "lvl0"} <= set(fake_server.results))
    assert fake_server.results["bad"].error.startswith("Failed to parse QASM circuit 0:")
    assert fake_server.results["lvl0"].error == (
        "meas_level 0 is not supported by the mock executor"
    )


async def test_unacked_result_is_resent_after_server_restart(
    fake_server: FakeDriverServer, start_daemon, tmp_path: Path
):
    fake_server.auto_ack = False
    running = await start_daemon(executor=SCRIPTED)
    fake_server.assign("j1", scripted("ok"))
    await fake_server.wait_for(lambda: "j1" in fake_server.results)
    first = fake_server.results["j1"]
    assert "j1" in running.daemon.unacked
    port = fake_server.port
    await fake_server.stop(0)
    await fake_server.start(port)
    fake_server.auto_ack = True
    await fake_server.wait_for(lambda: fake_server.sessions == 2, timeout=30)
    assert [(h.job_id, h.attempt) for h in fake_server.hellos[1].held_jobs] == [("j1", 1)]
    await fake_server.wait_for(lambda: not running.daemon.unacked)
    resent = [r for r in fake_server.kinds("job_result") if r.job_id == "j1"]
    assert len(resent) == 2
    assert resent[1].result_json == first.result_json
    assert executions(tmp_path) == ["j1"]


async def test_reassignment_with_new_attempt_reuses_the_result(
    fake_server: FakeDriverServer, start_daemon, tmp_path: Path
):
    fake_server.auto_ack = False
    running = await start_daemon(executor=SCRIPTED)
    fake_server.assign("j1", scripted("ok"))
    await fake_server.wait_for(lambda: "j1" in running.daemon.unacked)
    fake_server.assign("j1", scripted("ok"), attempt=2)
    await fake_server.wait_for(lambda: len(fake_server.kinds("job_result")) == 2)
    second = fake_server.kinds("job_result")[1]
    assert second.attempt == 2
    assert second.result_json == fake_server.kinds("job_result")[0].result_json
    assert executions(tmp_path) == ["j1"]


async def test_cancel_queued_and_running_jobs(
    fake_server: FakeDriverServer, start_daemon, tmp_path: Path
):
    running = await start_daemon(executor=SCRIPTED)
    fake_server.assign("slow", scripted("sleep 30"))
    fake_server.assign("queued", scripted("ok"))
    await fake_server.wait_for(lambda: len(fake_server.kinds("job_accepted")) == 2)
    await fake_server.wait_for(lambda: executions(tmp_path) == ["slow"])
    fake_server.cancel("queued")
    fake_server.cancel("slow")
    await fake_server.wait_for(lambda: running.daemon.running is None)
    fake_server.assign("after", scripted("ok"))
    await fake_server.wait_for(lambda: "after" in fake_server.results, timeout=60)
    assert set(fake_server.results) == {"after"}
    assert executions(tmp_path) == ["slow", "after"]


async def test_worker_crash_fails_the_job_and_restarts(fake_server: FakeDriverServer, start_daemon):
    await start_daemon(executor=SCRIPTED)
    fake_server.assign("crash", scripted("crash"))
    fake_server.assign("fail", scripted("fail"))
    fake_server.assign("next", scripted("ok"))
    await fake_server.wait_for(lambda: len(fake_server.results) == 3, timeout=60)
    assert fake_server.results["crash"].error == (
        "worker process crashed (exit code -11) while running the job"
    )
    assert fake_server.results["fail"].error == "RuntimeError: boom"
    assert fake_server.results["next"].result_json


async def test_job_timeout_restarts_the_worker(fake_server: FakeDriverServer, start_daemon):
    await start_daemon(executor=SCRIPTED, job_timeout=0.5)
    fake_server.assign("slow", scripted("sleep 30"))
    fake_server.assign("next", scripted("ok"))
    await fake_server.wait_for(lambda: len(fake_server.results) == 2, timeout=60)
    assert "job timeout of 0.5 s" in fake_server.results["slow"].error
    assert fake_server.results["next"].result_json


async def test_shutdown_finishes_running_job_and_releases_queued(
    fake_server: FakeDriverServer, start_daemon, tmp_path: Path
):
    running = await start_daemon(executor=SCRIPTED)
    fake_server.assign("running", scripted("sleep 0.5"))
    fake_server.assign("queued", scripted("ok"))
    await fake_server.wait_for(lambda: executions(tmp_path) == ["running"])
    assert await running.stop() == 0
    assert "running" in fake_server.results
    assert [r.job_id for r in fake_server.kinds("job_release")] == ["queued"]
    assert fake_server.kinds("goodbye")


async def test_shutdown_grace_expiry_releases_running_job(
    fake_server: FakeDriverServer, start_daemon, tmp_path: Path
):
    running = await start_daemon(executor=SCRIPTED, shutdown_grace=0.3)
    fake_server.assign("stuck", scripted("sleep 60"))
    await fake_server.wait_for(lambda: executions(tmp_path) == ["stuck"])
    assert await running.stop() == 0
    assert [r.job_id for r in fake_server.kinds("job_release")] == ["stuck"]
    assert not fake_server.results


async def test_bad_token_is_fatal(fake_server: FakeDriverServer, tmp_path: Path):
    fake_server.token = "other"
    settings = DriverSettings(token=TOKEN, data_dir=tmp_path / "data", executor="mock")

    def discover(*_: object) -> Endpoint:
        return Endpoint(f"127.0.0.1:{fake_server.port}", None)

    daemon = DriverDaemon(settings, discover_fn=discover)
    assert await asyncio.wait_for(daemon.run(handle_signals=False), 60) == 2
