"""12.4a: `include` in submitted QASM never reads a file on the server.

Before the fix, `include "/etc/shadow";` made the parser open the file and echo its first
token in the error ("'root' is not defined"), and the error told existing files from
missing ones. Only the standard includes are allowed, served from memory.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.security._qasm import error_info, grpc_submit, rest_submit
from tests.security.conftest import Actors

SECRET = "hunter2secrettoken"


def _including(path: str) -> str:
    return f'OPENQASM 2.0;\ninclude "{path}";\nqreg q[1];\nh q[0];\n'


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f"{SECRET} more words;\n")
    return path


def test_rest_refuses_file_includes_without_reading_them(actors: Actors, secret_file: Path) -> None:
    existing = rest_submit(actors.http, actors.alice, [_including(str(secret_file))])
    missing = rest_submit(actors.http, actors.alice, [_including(str(secret_file) + ".nope")])
    for response, path in ((existing, str(secret_file)), (missing, str(secret_file) + ".nope")):
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert SECRET not in response.text
        assert path in message
        assert "qelib1.inc" in message
        assert "stdgates.inc" in message
    # Same answer whether or not the file exists: no existence oracle.
    assert existing.json()["message"] == missing.json()["message"].replace(".nope", "")
    relative = rest_submit(actors.http, actors.alice, [_including("qpi.db")])
    assert relative.status_code == 400
    assert "qpi.db" in relative.json()["message"]


SNEAKY = [
    'OPENQASM 2.0;\ninclude "/etc/passwd";\nqreg q[1];\n',
    'OPENQASM 2.0;\ninclude"/etc/passwd";qreg q[1];\n',
    'OPENQASM 2.0;\n/* hidden */ include "/etc/passwd";\nqreg q[1];\n',
    'OPENQASM 2.0;\ninclude "qelib1.inc"; include "../../etc/passwd";\nqreg q[1];\n',
    'OPENQASM 3.0;\ninclude "/etc/passwd";\nqubit[1] q;\n',
    'OPENQASM 3.0;\ndefcalgrammar "//"; include "/etc/passwd";\nqubit[1] q;\n',
]
"""Spellings and hiding places of a file include, in both OpenQASM versions."""


def test_grpc_refuses_every_non_standard_include(actors: Actors) -> None:
    for source in SNEAKY:
        with pytest.raises(grpc.RpcError) as caught:
            grpc_submit(actors.server, actors.alice["X-API-Token"], [source])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, source
        info = error_info(caught.value)
        assert info.reason == "QASM_INCLUDE_FORBIDDEN", source
        assert "passwd" in info.metadata["include"], source
        assert "root" not in (caught.value.details() or ""), source


def test_rest_and_grpc_accept_the_standard_includes(actors: Actors) -> None:
    qpu_id = actors.server.create_qpu("inc", 4)
    qasm2 = 'OPENQASM 2.0;\ninclude "qelib1.inc"; // the standard gates\nqreg q[2];\nh q[0];\n'
    qasm3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\ncx q[0], q[1];\n'
    created = rest_submit(actors.http, actors.alice, [qasm2, qasm3], qpu=qpu_id)
    assert created.status_code == 201, created.text
    job = grpc_submit(actors.server, actors.bob["X-API-Token"], [qasm3, qasm2], qpu=qpu_id)
    assert job.id
