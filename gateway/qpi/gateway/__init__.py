"""QPI REST gateway: PocketBase-compatible HTTP routes served by calling the gRPC services.

The gateway holds no business logic. Every route converts its input into a gRPC request,
calls the services over one ``grpc.aio`` channel and converts the reply (or the error) back
into the JSON shapes the original QPI server returned.
"""
