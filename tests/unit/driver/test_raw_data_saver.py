"""Raw-data writes have a bounded backlog: a slow disk throttles jobs instead of eating memory."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qpi.driver import worker


def test_backlog_is_bounded_and_every_dataset_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = threading.Event()
    written: list[Path] = []

    def slow_save(dataset: Any, path: Path) -> None:
        disk.wait()
        written.append(path)

    monkeypatch.setattr(worker, "_save_raw", slow_save)
    saver = worker._RawDataSaver()
    for i in range(worker.PENDING_SAVES):
        saver.submit(object(), tmp_path / f"{i}.nc")  # returns at once: within the backlog
    blocked = threading.Thread(target=saver.submit, args=(object(), tmp_path / "extra.nc"))
    blocked.start()
    time.sleep(0.2)
    assert blocked.is_alive(), "the backlog grew past PENDING_SAVES"
    disk.set()
    blocked.join(5)
    assert not blocked.is_alive()
    saver.close()
    assert len(written) == worker.PENDING_SAVES + 1
