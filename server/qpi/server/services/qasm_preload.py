"""Imported only by the QASM parser pool's fork server, before any worker exists.

Native libraries size their thread pools at import, so the single-thread settings come
first; then Qiskit's parsers are imported and exercised once. Every worker forked from this
server starts warm. Nothing here may raise: a failing preload would stop the fork server,
and with it every parse.
"""

import contextlib
import os

from qpi.server.services import qasm

os.environ.update(qasm.SINGLE_THREADED)
with contextlib.suppress(Exception):
    qasm.warm_parsers()
