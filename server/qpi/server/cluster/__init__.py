"""A cluster of `qpi serve` replicas on one PostgreSQL database."""
