"""Executors: the pluggable part of the driver that actually runs circuits."""

from qpi.driver.executors.base import Executor
from qpi.driver.executors.registry import resolve_executor

__all__ = ["Executor", "resolve_executor"]
