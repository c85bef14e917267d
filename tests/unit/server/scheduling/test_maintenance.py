"""The leader's maintenance duties (scheduling/recovery.py): stale-lease recovery and
telemetry pruning in batches."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from qpi.server.scheduling.recovery import maintenance_duties
from qpi.server.services.telemetry_service import PRUNE_BATCH


class _InlineDb:
    def __init__(self) -> None:
        self.hops = 0

    async def run(self, fn: Any, *args: Any) -> Any:
        self.hops += 1
        return fn(*args)


class _Telemetry:
    def __init__(self, batches: list[int]) -> None:
        self.batches = batches

    def prune(self) -> int:
        return self.batches.pop(0)


class _Leases:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def recover_stale(self) -> list[str]:
        return self.ids


def _duties(db: _InlineDb, leases: _Leases, telemetry: _Telemetry) -> dict[str, Any]:
    found = maintenance_duties(db, leases, telemetry, 5.0, 3600.0)  # type: ignore[arg-type]
    assert [(name, seconds) for name, seconds, _ in found] == [
        ("recovery", 5.0),
        ("telemetry pruning", 3600.0),
    ]
    return {name: duty for name, _, duty in found}


async def test_pruning_repeats_while_whole_batches_go_one_hop_each() -> None:
    db, telemetry = _InlineDb(), _Telemetry([PRUNE_BATCH, PRUNE_BATCH, 7, 99])
    await _duties(db, _Leases([]), telemetry)["telemetry pruning"]()
    assert db.hops == 3
    assert telemetry.batches == [99]  # stopped after the first partial batch


async def test_recovery_reports_what_it_requeued(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    duties = _duties(_InlineDb(), _Leases(["j1", "j2"]), _Telemetry([]))
    await duties["recovery"]()
    [record] = [r for r in caplog.records if "[Recovery]" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "requeued 2 job(s)" in record.getMessage()
    caplog.clear()
    await _duties(_InlineDb(), _Leases([]), _Telemetry([]))["recovery"]()
    assert not [r for r in caplog.records if "[Recovery]" in r.getMessage()]
