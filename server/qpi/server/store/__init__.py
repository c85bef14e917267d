"""Persistence: all SQL, as one repository per aggregate (a Protocol the services depend
on plus its SQL implementation returning domain records), the SQLModel tables, engine
setup and migrations. Knows nothing of gRPC, HTTP or services."""
