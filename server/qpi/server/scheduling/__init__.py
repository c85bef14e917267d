"""Event-driven dispatch and stale-lease recovery."""
