"""Persistence: SQLModel tables, engine setup and migrations (no gRPC, no HTTP)."""
