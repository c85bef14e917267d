"""Runs inside the published qpi-client 0.4.2 venv: prints the counts of Bell jobs as JSON.

Usage: python published_client_counts.py <url> <api token> <qpu name>. The first line is a
Qiskit circuit through `backend.run`, the second a QASM job through `submit_job`.
"""

import json
import sys

from qiskit import QuantumCircuit
from qpi_client import QPIClient
from qpi_client.provider import QPIJob

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def main():
    url, token, qpu = sys.argv[1:4]
    client = QPIClient(url, api_token=token)
    backend = client.get_backend(qpu)
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    counts = backend.run(circuit, shots=200).result(timeout=240, wait=0.2).get_counts()
    print(json.dumps(counts))
    job_id = client.submit_job([{"circuit": BELL}], shots=200)
    result = QPIJob(backend, job_id, client).result(timeout=240, wait=0.2)
    print(json.dumps(result.get_counts()))


if __name__ == "__main__":
    main()
