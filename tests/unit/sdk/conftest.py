"""A small in-process fake of QPI's JobService/QpuService for exercising the SDK's wire
behaviour (streams, metadata, rich errors) before/besides the real server fixture."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from qiskit import qasm2, qasm3
from qiskit.providers.basic_provider import BasicSimulator

from qpi.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    qpu_pb2,
    qpu_service_pb2,
    qpu_service_pb2_grpc,
)

TOKEN = "qpi_good"
TERMINAL = {job_pb2.Job.STATE_COMPLETED, job_pb2.Job.STATE_FAILED, job_pb2.Job.STATE_CANCELLED}
QPU = qpu_pb2.Qpu(id="q1", name="qpu-1", num_qubits=2, status=qpu_pb2.Qpu.STATUS_ONLINE)


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, msg: str) -> None:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="qpi.v1"))
    status = status_pb2.Status(code=code.value[0], message=msg, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


def parse(text: str) -> Any:
    return qasm3.loads(text) if text.lstrip().startswith("OPENQASM 3") else qasm2.loads(text)


def simulate(payload: job_pb2.JobPayload) -> dict[str, Any]:
    entries = []
    for circuit_msg in payload.circuits:
        circuit = parse(circuit_msg.qasm)
        shots = circuit_msg.shots or payload.shots or 1024
        bindings = [list(s.values) for s in circuit_msg.parameter_values] or [None]
        for values in bindings:
            bound = circuit.assign_parameters(values) if values else circuit
            raw = BasicSimulator().run(bound, shots=shots).result().get_counts()
            width = bound.num_clbits
            counts = {format(i, f"0{width}b"): 0 for i in range(2**width)}
            for key, value in raw.items():
                counts[key.replace(" ", "")] += value
            entries.append({"counts": counts, "shots": shots})
    return {"success": True, "circuit_results": entries, **entries[0]}


class FakeQpi(job_service_pb2_grpc.JobServiceServicer, qpu_service_pb2_grpc.QpuServiceServicer):
    """Runs jobs on BasicSimulator after ``delay`` seconds; WatchJob streams changes."""

    def __init__(self) -> None:
        self.jobs: dict[str, job_pb2.Job] = {}
        self.cond = threading.Condition()
        self.calls: Counter[str] = Counter()
        self.delay = 0.05
        self.finished_at: dict[str, float] = {}

    def _auth(self, context: grpc.ServicerContext) -> None:
        if ("authorization", f"Bearer {TOKEN}") not in context.invocation_metadata():
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", "bad token")

    def _job(self, job_id: str, context: grpc.ServicerContext) -> job_pb2.Job:
        with self.cond:
            if job_id not in self.jobs:
                abort(context, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "no such job")
            return job_pb2.Job().FromString(self.jobs[job_id].SerializeToString())

    def _update(self, job_id: str, **fields: Any) -> None:
        with self.cond:
            job = self.jobs[job_id]
            if job.state in TERMINAL:
                return
            for key, value in fields.items():
                setattr(job, key, value)
            job.update_time.GetCurrentTime()
            if job.state in TERMINAL:
                job.finish_time.GetCurrentTime()
                self.finished_at[job_id] = time.monotonic()
            self.cond.notify_all()

    def _execute(self, job_id: str) -> None:
        time.sleep(self.delay)
        self._update(job_id, state=job_pb2.Job.STATE_RUNNING)
        time.sleep(self.delay)
        with self.cond:
            payload = self.jobs[job_id].payload
        try:
            result = json.dumps(simulate(payload))
        except Exception as err:
            self._update(job_id, state=job_pb2.Job.STATE_FAILED, error=str(err))
            return
        self._update(job_id, state=job_pb2.Job.STATE_COMPLETED, result_json=result)

    def CreateJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["CreateJob"] += 1
        self._auth(context)
        if request.qpu not in ("", QPU.id, QPU.name):
            abort(context, grpc.StatusCode.NOT_FOUND, "QPU_NOT_FOUND", "no such QPU")
        for circuit in request.payload.circuits:
            try:
                parse(circuit.qasm)
            except Exception:
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_QASM", "bad QASM")
        with self.cond:
            job_id = f"job{len(self.jobs):012d}"
            job = job_pb2.Job(id=job_id, qpu_id=QPU.id, qpu_name=QPU.name, payload=request.payload)
            job.state = job_pb2.Job.STATE_PENDING
            job.create_time.GetCurrentTime()
            self.jobs[job_id] = job
        if request.payload.shots != 13:  # 13 shots: the job never runs (for timeouts)
            threading.Thread(target=self._execute, args=(job_id,), daemon=True).start()
        return job_service_pb2.CreateJobResponse(job=job)

    def GetJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["GetJob"] += 1
        self._auth(context)
        return job_service_pb2.GetJobResponse(job=self._job(request.id, context))

    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["CancelJob"] += 1
        self._auth(context)
        if self._job(request.id, context).state in TERMINAL:
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, "JOB_ALREADY_TERMINAL", "done")
        self._update(request.id, state=job_pb2.Job.STATE_CANCELLED)
        return job_service_pb2.CancelJobResponse(job=self._job(request.id, context))

    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["ListJobs"] += 1
        self._auth(context)
        with self.cond:
            jobs = sorted(self.jobs.values(), key=lambda j: j.id, reverse=True)
        start = int(request.page_token or 0)
        size = request.page_size or 2
        page = jobs[start : start + size]
        more = start + size < len(jobs)
        return job_service_pb2.ListJobsResponse(
            jobs=page, next_page_token=str(start + size) if more else "", total_size=len(jobs)
        )

    def WatchJob(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.calls["WatchJob"] += 1
        self._auth(context)
        last = None
        while context.is_active():
            job = self._job(request.id, context)
            if job != last:
                yield job_service_pb2.WatchJobResponse(job=job)
                last = job
            if job.state in TERMINAL:
                return
            with self.cond:
                if self.jobs[request.id] == last:
                    self.cond.wait(timeout=0.5)

    def GetQpu(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["GetQpu"] += 1
        self._auth(context)
        if request.id not in (QPU.id, QPU.name):
            abort(context, grpc.StatusCode.NOT_FOUND, "QPU_NOT_FOUND", "no such QPU")
        return qpu_service_pb2.GetQpuResponse(qpu=QPU)


class FakeServer:
    """A running fake with its plaintext ``target`` and servicer ``state``."""

    def __init__(self) -> None:
        self.token = TOKEN
        self.state = FakeQpi()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=160))
        job_service_pb2_grpc.add_JobServiceServicer_to_server(self.state, self.server)
        qpu_service_pb2_grpc.add_QpuServiceServicer_to_server(self.state, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{port}"
        self.server.start()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.server.stop(grace=None)
