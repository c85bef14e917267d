"""PocketBase-style collections, each backed by gRPC calls."""
