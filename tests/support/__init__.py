"""Test support code: server harness and a minimal stream driver."""
