"""The `qblox` executor (extra `qblox`): qblox-scheduler on Qblox clusters.

qblox-scheduler 1.0.x ships only the abstract `DeviceElement`/`Edge` models, so this
executor brings its own transmon element and CZ edge (`_qblox_device`: DRAG Rxy, virtual
Rz, idle reset, dispersive measurement, composite square-pulse CZ). Everything else follows
the `quantify` executor, whose helpers it reuses (subclass): the same QASM gate set lowered
to Rxy/Rz/CZ/Measure/Reset (`_quantify_gates` with qblox-scheduler's gate library), the same
per-circuit shots, meas_level 1 (IQ, `IQIntegration`, averaged or per shot) and 2 (counts:
`ThresholdedIQIntegration` when the device config sets `measure.acq_threshold` and
`measure.acq_rotation` and the job gives no override, otherwise software discrimination of
`IQIntegration` values), and meas_level 0 rejected with a precise error.

Flow per run: `TimeableSchedule(repetitions=shots)` -> `SerialCompiler` against the
qblox-scheduler `QuantumDevice` built from the device config -> `InstrumentCoordinator`
with one `ClusterComponent` per cluster: prepare, start, wait_done, retrieve_acquisition.
Every measurement gets its own acquisition label (`q<i>m<k>`: k-th measurement of qubit i),
so repeated measurements of a qubit are not averaged together on retrieval.

Configs: `--quantify-device-config`/`--quantify-hardware-config` as for quantify; without
them the shipped `qblox.device.example.yml`/`qblox.hardware.example.json` are used. A
quantify device config loads too (its element classes map onto ours), and a quantify
hardware config's `config_type` path is accepted.

Running next to the quantify executor in one process: qblox-scheduler's
`ClusterComponent` closes any qcodes instrument named `ic_<cluster>_module<slot>` before
creating its own, and both coordinators would add an `ic_generic` component. So every
cluster is renamed `qpi_qblox_<name>` (hardware config and instrument alike), the
coordinator gets a unique `qpi_qblox_ic_<hex>` name and no generic component. No other
qcodes instrument is created (qblox-scheduler's devices and elements are pydantic models).

With `is_dummy` the clusters are qblox-instruments dummies, loaded before each run with IQ
points that match the circuit's ideal outcome (simulated with Qiskit's BasicSimulator), as
in the quantify executor. Versions: qblox-scheduler 1.0.1 and qblox-instruments 1.1.1 (see
the quantify executor about newer qblox-instruments on Debian 12).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qpi.driver.executors._qasm import Run
from qpi.driver.executors._quantify_device import (
    cluster_descriptions,
    load_mapping,
    make_cluster,
)
from qpi.driver.executors._quantify_gates import (
    QUANTIFY_GATES,
    GateOps,
    Lowered,
    circuit_to_schedule,
)
from qpi.driver.executors.base import Executor
from qpi.driver.executors.quantify import (
    DEFAULT_ACQUISITION_TIMEOUT,
    QuantifyExecutor,
    dummy_iq,
    write_dummy_bins,
)

if TYPE_CHECKING:
    from qpi.driver.executors._qblox_device import QbloxSetup
    from qpi.driver.payload import JobPayload

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
EXAMPLE_DEVICE_CONFIG = CONFIG_DIR / "qblox.device.example.yml"
EXAMPLE_HARDWARE_CONFIG = CONFIG_DIR / "qblox.hardware.example.json"
CLUSTER_PREFIX = "qpi_qblox_"

TRACE_UNSUPPORTED = (
    "meas_level 0 is not supported by the qblox executor: raw traces (Trace "
    "acquisitions) are not implemented; use meas_level 1 or 2"
)

_SEQUENCER = re.compile(r"^seq(\d+)$")
_MODULE = re.compile(r"_module(\d+)$")


def acq_label(qubit: int, acq_index: int) -> str:
    """The acquisition label of the `acq_index`-th measurement of qubit `qubit`."""
    return f"q{qubit}m{acq_index}"


def qblox_ops() -> GateOps:
    """qblox-scheduler's gate library for `circuit_to_schedule` (imported on call)."""
    from qblox_scheduler.operations.gate_library import CZ, Measure, Reset, Rxy, Rz
    from qblox_scheduler.operations.pulse_library import IdlePulse
    from qblox_scheduler.schedules.schedule import TimeableSchedule

    def measure(q: int, acq_index: int, protocol: str, bin_mode: str) -> Any:
        thresholded = protocol == "ThresholdedAcquisition"
        return Measure(
            f"q{q}",
            acq_label=acq_label(q, acq_index),
            acq_protocol="ThresholdedIQIntegration" if thresholded else "IQIntegration",
            average_segment_repetitions=bin_mode == "average",
        )

    return GateOps(
        executor="qblox",
        schedule=lambda name, shots: TimeableSchedule(name, repetitions=shots),
        rxy=lambda theta, phi, qubit: Rxy(theta=theta, phi=phi, qubit=qubit),
        rz=lambda theta, qubit: Rz(theta=theta, qubit=qubit),
        cz=lambda control, target: CZ(qC=control, qT=target),
        reset=Reset,
        idle=IdlePulse,
        measure=measure,
    )


class QbloxExecutor(QuantifyExecutor):
    """Gate-level circuits on Qblox clusters (or dummies) through qblox-scheduler."""

    name: ClassVar[str] = "qblox"
    native_gates: ClassVar[tuple[str, ...]] = QUANTIFY_GATES
    supported_meas_levels: ClassVar[frozenset[int]] = frozenset({1, 2})
    trace_unsupported: ClassVar[str] = TRACE_UNSUPPORTED
    protocol_names: ClassVar[dict[str, str]] = {
        "SSBIntegrationComplex": "IQIntegration",
        "ThresholdedAcquisition": "ThresholdedIQIntegration",
    }

    def __init__(
        self,
        *,
        is_dummy: bool = False,
        device_config: Path | str | None = None,
        hardware_config: Path | str | None = None,
        acquisition_timeout: float | None = None,
        job_timeout: float | None = None,
        **options: Any,
    ) -> None:
        """Loads both configs, builds the device and connects (or fakes) the clusters.

        Args:
            is_dummy: Use dummy clusters instead of the `ip` of each cluster.
            device_config: Device config YAML/JSON (alias `quantify_device_config`);
                defaults to the shipped qblox example.
            hardware_config: Hardware compilation config JSON/YAML (alias
                `quantify_hardware_config`); defaults to the shipped qblox example.
            acquisition_timeout: Seconds to wait for a run to finish (default 10 s).
            job_timeout: The daemon's per-job limit; it bounds the wait when smaller.
            **options: Common executor options (data_dir) and ignored extras.
        """
        device_config = device_config or options.pop("quantify_device_config", None)
        hardware_config = hardware_config or options.pop("quantify_hardware_config", None)
        Executor.__init__(self, **options)
        from qblox_scheduler.backends import SerialCompiler
        from qblox_scheduler.instrument_coordinator import InstrumentCoordinator
        from qblox_scheduler.instrument_coordinator.components.qblox import ClusterComponent

        from qpi.driver.executors._qblox_device import (
            build_qblox_device,
            normalise_hardware_config,
        )

        self.is_dummy = bool(is_dummy)
        timeout = acquisition_timeout or DEFAULT_ACQUISITION_TIMEOUT
        if job_timeout and job_timeout > 0:
            timeout = min(timeout, float(job_timeout))
        self.acquisition_timeout = float(timeout)
        self.device_config_path = Path(device_config or EXAMPLE_DEVICE_CONFIG)
        self.hardware_config_path = Path(hardware_config or EXAMPLE_HARDWARE_CONFIG)
        self.device_config = load_mapping(self.device_config_path)
        self.hardware_config = normalise_hardware_config(
            load_mapping(self.hardware_config_path), CLUSTER_PREFIX
        )

        if self.data_dir is not None:
            self.workdir = Path(self.data_dir).resolve() / "qblox"
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="qpi-qblox-"))

        self._instruments: list[Any] = []
        suffix = uuid.uuid4().hex[:8]
        self.setup: QbloxSetup = build_qblox_device(  # type: ignore[assignment]
            self.device_config, self.hardware_config, f"qpi_qblox_device_{suffix}"
        )
        try:
            self.num_qubits = len(self.setup.qubits)
            self.clusters: dict[str, Any] = {}
            self.coordinator = InstrumentCoordinator(
                f"qpi_qblox_ic_{suffix}", add_default_generic_icc=False
            )
            self._instruments.append(self.coordinator)
            for cluster_name, entry in cluster_descriptions(self.hardware_config).items():
                cluster = make_cluster(cluster_name, entry, self.is_dummy)
                self._instruments.append(cluster)
                self.clusters[cluster_name] = cluster
                component = ClusterComponent(cluster)
                self._instruments.append(component)
                self.coordinator.add_component(component)
            self.compiler = SerialCompiler("qpi_qblox_compiler", quantum_device=self.setup.device)
            self.compilation_config = self.setup.device.generate_compilation_config()
        except BaseException:
            self.close()
            raise
        self._ops = qblox_ops()
        self._rng = np.random.default_rng()
        self._simulator: Any = None

    # -- hooks of the quantify executor ---------------------------------------------------

    def _lower(self, run: Run, name: str, protocol: str, bin_mode: str) -> Lowered:
        return circuit_to_schedule(
            run.circuit,
            run.shots,
            name=name,
            edges=self.setup.edges,
            protocol=protocol,
            bin_mode=bin_mode,
            ops=self._ops,
        )

    def _bin_values(
        self, acquisitions: Any, qubit: int, acq_index: int, bin_mode: str
    ) -> np.ndarray:
        values: np.ndarray = np.asarray(acquisitions[acq_label(qubit, acq_index)].values)
        return values.reshape(-1)[:1] if bin_mode == "average" else values.reshape(-1)

    def _discrimination(self, payload: JobPayload) -> tuple[float, float, bool]:
        """Returns (rotation in degrees, threshold, use hardware thresholding)."""
        if payload.acq_rotation is not None and payload.acq_threshold is not None:
            return float(payload.acq_rotation), float(payload.acq_threshold), False
        if self.setup.thresholded:
            measure = self.setup.device.get_element(self.setup.thresholded[0]).measure
            return float(measure.acq_rotation), float(measure.acq_threshold), True
        rotation = payload.acq_rotation if payload.acq_rotation is not None else 0.0
        threshold = payload.acq_threshold if payload.acq_threshold is not None else 0.0
        return float(rotation), float(threshold), False

    def _run_schedule(
        self, run: Run, lowered: Lowered, bin_mode: str, discrimination: tuple[float, float]
    ) -> Any:
        with contextlib.chdir(self.workdir):
            compiled = self.compiler.compile(lowered.schedule, config=self.compilation_config)
            if self.is_dummy:
                self._load_dummy_data(compiled, run, lowered, bin_mode, discrimination)
            coordinator = self.coordinator
            try:
                coordinator.prepare(compiled)
                coordinator.start()
                coordinator.wait_done(timeout_sec=self.acquisition_timeout)
                return coordinator.retrieve_acquisition()
            except BaseException:
                with contextlib.suppress(Exception):
                    coordinator.stop(allow_failure=True)
                raise

    def _load_dummy_data(
        self, compiled: Any, run: Run, lowered: Lowered, bin_mode: str, discrimination: Any
    ) -> None:
        """Loads one IQ point per bin into every dummy readout sequencer of the program."""
        rotation, threshold = discrimination
        bits = self._simulate_bits(run)
        # label -> (IQ point per shot, bit per shot)
        shots: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for qubit, acq_index, clbit in lowered.clbit_map:
            column = bits[:, clbit]
            points = dummy_iq(column, rotation, threshold, self._rng)
            shots[acq_label(qubit, acq_index)] = (points, column)
        instructions = compiled.compiled_instructions
        for cluster_name, cluster in self.clusters.items():
            for module_name, module in (instructions.get(cluster_name) or {}).items():
                slot = _MODULE.search(str(module_name))
                if slot is None or not isinstance(module, dict):
                    continue
                for seq_name, mapping in (module.get("acq_hardware_mapping") or {}).items():
                    seq = _SEQUENCER.match(str(seq_name))
                    settings = module["sequencers"].get(seq_name)
                    if seq is None or settings is None:
                        continue
                    length = float(getattr(settings, "integration_length_acq", None) or 1)
                    acquisitions = settings.sequence.get("acquisitions", {})
                    bins: dict[int, dict[int, tuple[complex, int]]] = {}
                    for binned in getattr(mapping, "binned", None) or []:
                        target = bins.setdefault(int(binned.qblox_acq_index), {})
                        _assign_bins(
                            binned.tree, int(binned.qblox_acq_bin_offset), None, shots,
                            bin_mode, target,
                        )  # fmt: skip
                    for acq_name, info in acquisitions.items():
                        write_dummy_bins(
                            cluster,
                            (int(slot.group(1)), int(seq.group(1)), str(acq_name)),
                            int(info["num_bins"]),
                            bins.get(int(info["index"]), {}),
                            threshold,
                            length,
                        )


def _assign_bins(
    node: Any,
    next_bin: int,
    repetition: int | None,
    shots: dict[str, tuple[np.ndarray, np.ndarray]],
    bin_mode: str,
    target: dict[int, tuple[complex, int]],
) -> int:
    """Walks a binned acquisition tree in the order the cluster component reads it back.

    A loop node with APPEND bin mode repeats its children once per repetition (the schedule
    repetitions, i.e. shots, for `average_segment_repetitions=False`); any other node is
    visited once. Each acquisition takes the next hardware bin. Returns the next free bin.
    """
    children = getattr(node, "children", None)
    if children is None:  # an acquisition (BinnedAcqInfo)
        entry = shots.get(str(node.acq_label))
        if entry is not None:
            points, bits = entry
            if bin_mode == "average" or repetition is None:
                # The dummy returns a bin as is, so an averaged bin holds the shot average.
                target[next_bin] = (complex(points.mean()), int(round(float(bits.mean()))))
            elif repetition < len(points):
                target[next_bin] = (complex(points[repetition]), int(bits[repetition]))
        return next_bin + 1
    repetitions = getattr(node, "repetitions", None)
    mode = str(getattr(getattr(node, "bin_mode", None), "value", getattr(node, "bin_mode", "")))
    count = int(repetitions) if repetitions is not None and mode == "append" else 0
    appended = count > 0
    for index in range(max(count, 1)):
        for child in children:
            next_bin = _assign_bins(
                child, next_bin, index if appended else repetition, shots, bin_mode, target
            )
    return next_bin
