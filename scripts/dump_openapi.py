"""Prints the gateway's OpenAPI document (deterministic JSON) without starting a server.

Used by scripts/gen_dashboard_api.sh: the dashboard's typed API client is generated from it.
"""

from __future__ import annotations

import json
import sys

from qpi.gateway.app import create_app
from qpi.gateway.config import GatewayConfig


def document() -> str:
    """The OpenAPI JSON of a gateway built with default collection names."""
    # The app only dials its gRPC target on first use, so an unused socket path is fine.
    app = create_app(GatewayConfig(grpc_target="unix:/nonexistent/qpi-openapi.sock"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document())
