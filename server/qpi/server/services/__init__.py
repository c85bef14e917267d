"""Use cases shared by the gRPC servicers (and, through them, the REST gateway)."""
