"""Re-attach time of a disabled driver: real `qpi serve` and `qpi-driver --executor mock`.

Each round disables the driver through `POST /api/op/drivers/toggle`, waits until the QPU
is offline and a random 0-3 s more (so the enable lands anywhere in the daemon's retry
cycle), enables it again and measures until the QPU reports `online` (polled every 50 ms).
Prints the median and the worst round; the issue's bound is 10 s.

    .venv/bin/python bench/driver_reattach.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.driver.test_driver_link import Rest  # noqa: E402
from tests.support.processes import DriverProcess, ServeProcess, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = ServeProcess(root / "serve").start()
        driver: DriverProcess | None = None
        try:
            token = server.create_qpu("bench_reattach")
            driver = DriverProcess(server, token, root, name="bench_reattach").start()
            driver.wait_connected()
            rest = Rest(server)
            driver_id = rest.driver_of(server, driver.name)["id"]
            admin = server.admin()
            samples = []
            for _ in range(args.rounds):
                rest.toggle(driver_id, False)
                wait_until(lambda: admin.get_qpu(driver.name).status != "online", 30, "offline")
                time.sleep(random.uniform(0, 3))
                enabled = time.monotonic()
                rest.toggle(driver_id, True)
                wait_until(
                    lambda: admin.get_qpu(driver.name).status == "online", 60, "online", 0.05
                )
                samples.append(time.monotonic() - enabled)
            assert driver.alive(), driver.log()
        finally:
            if driver is not None:
                driver.terminate()
            server.stop()
    print(
        f"re-attach after enable over {len(samples)} rounds: median "
        f"{statistics.median(samples):.2f} s, max {max(samples):.2f} s "
        f"(samples: {', '.join(f'{s:.2f}' for s in samples)})"
    )


if __name__ == "__main__":
    main()
