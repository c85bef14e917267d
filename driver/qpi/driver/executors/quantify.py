"""The `quantify` executor (extra `quantify`): quantify-scheduler on Qblox clusters.

Flow per run (circuit x parameter set): the circuit is lowered to Rxy/Rz/CZ/Measure/Reset
gate operations (`_quantify_gates`), put in a `Schedule(repetitions=shots)`, compiled with
`SerialCompiler` against the `QuantumDevice` built from the device config
(`_quantify_device`), then run by an `InstrumentCoordinator` holding one `ClusterComponent`
per cluster of the hardware config: prepare, start, wait_done(timeout), retrieve_acquisition.

Acquisition per meas_level:
    2: `ThresholdedAcquisition` when the device config sets `acq_threshold` and
       `acq_rotation` on some element's `measure` and the job gives no override (bit 1 iff
       the value is >= 0.5); otherwise `SSBIntegrationComplex` per shot and software
       discrimination (rotate IQ by the job's `acq_rotation` degrees, bit 1 iff real > the
       job's `acq_threshold`; each 0 when not given). A job giving both values therefore
       always uses software discrimination with them.
    1: `SSBIntegrationComplex`, bin mode `average` for meas_return=avg, else `append`.
    0: rejected with a precise error (not implemented). A `Trace` compiles and runs, but a
       Qblox readout module has one scope that records a single selected sequencer, so
       traces of several qubits read out together are not possible, and the 1.1.1 dummy
       returns NaN traces unless scope data is injected.

With `is_dummy` the clusters are qblox-instruments dummies whose modules follow the
hardware description. A dummy returns whatever binned data it was given, so before each run
the executor simulates the circuit with Qiskit's BasicSimulator and loads one IQ point per
bin (|0> and |1> blobs placed on either side of the discrimination threshold) into every
readout sequencer. Results are therefore finite and statistically match the circuit; a
clbit measured several times reports its final simulated value in every bin.

Versions: qblox-instruments is pinned to ==1.1.1. Releases >= 1.2.0 bundle a q1asm
assembler built against GLIBC 2.38, so on Debian 12 (GLIBC 2.36) `prepare()` fails with
"Assembly failed"; 1.1.1 still runs its assembler here (it writes tmp files into the CWD,
hence each run executes inside the executor's work directory).
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from qpi.driver.executors._qasm import Run, expand_runs
from qpi.driver.executors._quantify_device import (
    DeviceSetup,
    build_device,
    close_instruments,
    cluster_descriptions,
    load_mapping,
    make_cluster,
)
from qpi.driver.executors._quantify_gates import QUANTIFY_GATES, Lowered, circuit_to_schedule
from qpi.driver.executors.base import WARM_UP_SHOTS, Executor
from qpi.driver.results import (
    build_result,
    circuit_header,
    dense_counts,
    header_attr,
    iq_memory,
    outcomes_from_bits,
)

if TYPE_CHECKING:
    import xarray as xr

    from qpi.driver.payload import JobPayload

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
EXAMPLE_DEVICE_CONFIG = CONFIG_DIR / "quantify.device.example.yml"
EXAMPLE_HARDWARE_CONFIG = CONFIG_DIR / "quantify.hardware.example.json"
DEFAULT_ACQUISITION_TIMEOUT = 10.0

TRACE_UNSUPPORTED = (
    "meas_level 0 is not supported by the quantify executor: raw traces (Trace "
    "acquisitions) are not implemented; use meas_level 1 or 2"
)

# Dummy readout blobs, in the discrimination frame: threshold -/+ offset, Gaussian spread.
_DUMMY_OFFSET = 0.25
_DUMMY_SIGMA = 0.03
WARM_UP_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[1];
x q[0];
measure q[0] -> c[0];
"""
_SEQUENCER = re.compile(r"^seq(\d+)$")
_MODULE = re.compile(r"_module(\d+)$")


class QuantifyExecutor(Executor):
    """Gate-level circuits on Qblox clusters (or dummies) through quantify-scheduler."""

    name: ClassVar[str] = "quantify"
    native_gates: ClassVar[tuple[str, ...]] = QUANTIFY_GATES
    supported_meas_levels: ClassVar[frozenset[int]] = frozenset({1, 2})
    trace_unsupported: ClassVar[str] = TRACE_UNSUPPORTED
    # Acquisition protocol names reported in the dataset attrs (quantify's names are used
    # internally by the gate lowering).
    protocol_names: ClassVar[dict[str, str]] = {}
    stops_cleanly: ClassVar[bool] = True
    # One qubit: every device config has a qubit 0, not necessarily an edge 0-1.
    warm_up_qasm: ClassVar[str] = WARM_UP_QASM

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
                defaults to the shipped example.
            hardware_config: Hardware compilation config JSON/YAML (alias
                `quantify_hardware_config`); defaults to the shipped example.
            acquisition_timeout: Seconds to wait for a run to finish (default 10 s).
            job_timeout: The daemon's per-job limit; it bounds the wait when smaller.
            **options: Common executor options (data_dir) and ignored extras.
        """
        device_config = device_config or options.pop("quantify_device_config", None)
        hardware_config = hardware_config or options.pop("quantify_hardware_config", None)
        super().__init__(**options)
        from quantify_core.data.handling import set_datadir
        from quantify_scheduler.backends import SerialCompiler
        from quantify_scheduler.instrument_coordinator import InstrumentCoordinator
        from quantify_scheduler.instrument_coordinator.components.qblox import ClusterComponent

        self.is_dummy = bool(is_dummy)
        timeout = acquisition_timeout or DEFAULT_ACQUISITION_TIMEOUT
        if job_timeout and job_timeout > 0:
            timeout = min(timeout, float(job_timeout))
        self.acquisition_timeout = float(timeout)
        self.device_config_path = Path(device_config or EXAMPLE_DEVICE_CONFIG)
        self.hardware_config_path = Path(hardware_config or EXAMPLE_HARDWARE_CONFIG)
        self.device_config = load_mapping(self.device_config_path)
        self.hardware_config = load_mapping(self.hardware_config_path)

        if self.data_dir is not None:
            self.workdir = Path(self.data_dir).resolve() / "quantify"
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="qpi-quantify-"))
        set_datadir(str(self.workdir / "datadir"))

        self._instruments: list[Any] = []
        self.setup: DeviceSetup = build_device(self.device_config, self.hardware_config)
        self._instruments.extend(self.setup.instruments)
        try:
            self.num_qubits = len(self.setup.qubits)
            self.clusters: dict[str, Any] = {}
            self.coordinator = InstrumentCoordinator(f"qpi_ic_{uuid.uuid4().hex[:8]}")
            self._instruments.insert(0, self.coordinator)
            # Its default `ic_generic` component is an instrument too: without closing it,
            # a second executor in the same process could not be created.
            self._instruments[1:1] = [
                self.coordinator.find_instrument(name) for name in self.coordinator.components()
            ]
            for cluster_name, entry in cluster_descriptions(self.hardware_config).items():
                cluster = make_cluster(cluster_name, entry, self.is_dummy)
                self._instruments.append(cluster)
                self.clusters[cluster_name] = cluster
                component = ClusterComponent(cluster)
                self._instruments.append(component)
                self.coordinator.add_component(component)
            self.compiler = SerialCompiler("qpi_compiler", quantum_device=self.setup.device)
            self.compilation_config = self.setup.device.generate_compilation_config()
        except BaseException:
            self.close()
            raise
        self._rng = np.random.default_rng()
        self._simulator: Any = None

    def capabilities(self) -> dict[str, Any]:
        """Coupling map and durations of the device config, with the executor's gates."""
        from qpi.driver.capabilities import device_config_capabilities

        caps = device_config_capabilities(
            self.device_config, self.native_gates, self.supported_meas_levels
        )
        caps["num_qubits"] = self.num_qubits
        return caps

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Closes the coordinator, components, clusters and device elements.

        Safe to call twice and after `qcodes.Instrument.close_all()`.
        """
        for instrument in self._instruments:
            # A ClusterComponent's per-module components are instruments of their own.
            for module in getattr(instrument, "_cluster_modules", {}).values():
                with contextlib.suppress(Exception):
                    module.close()
        close_instruments(self._instruments)

    def warm_up(self) -> None:
        """Imports and caches the compile path before the first job.

        Dummy clusters run a whole tiny job. Real instruments only compile it (lowering,
        device compilation, Q1ASM generation): the warm-up must not play pulses on a QPU.
        """
        if self.is_dummy:
            # One level: a dummy run costs seconds, and level 1 shares its compile path.
            self.run_warm_up_job(frozenset({2}))
            return
        import xarray  # noqa: F401 - the dataset of every job

        from qpi.driver.payload import CircuitPayload, JobPayload

        payload = JobPayload(
            circuits=[CircuitPayload(self.warm_up_qasm)], id="warm-up", shots=WARM_UP_SHOTS
        )
        (run,) = expand_runs(payload, self.num_qubits)
        lowered = self._lower(run, "warm-up", "SSBIntegrationComplex", "append")
        with contextlib.chdir(self.workdir), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.compiler.compile(lowered.schedule, config=self.compilation_config)

    # -- execution ------------------------------------------------------------------------

    def execute(self, payload: JobPayload) -> xr.Dataset:
        """Compiles and runs every circuit x parameter set; returns counts or IQ per run."""
        import xarray as xr

        if payload.meas_level == 0:
            raise ValueError(self.trace_unsupported)
        self.check_meas_level(payload.meas_level)
        runs = expand_runs(payload, self.num_qubits)
        rotation, threshold, hardware_threshold = self._discrimination(payload)
        if payload.meas_level == 2:
            protocol = "ThresholdedAcquisition" if hardware_threshold else "SSBIntegrationComplex"
            bin_mode = "append"
        else:
            protocol = "SSBIntegrationComplex"
            bin_mode = "average" if payload.meas_return == "avg" else "append"
        attrs: dict[str, Any] = {
            "n_runs": len(runs),
            "meas_level": payload.meas_level,
            "meas_return": payload.meas_return,
            "job_id": payload.id,
            "acq_protocol": self.protocol_names.get(protocol, protocol),
            "acq_rotation": rotation,
            "acq_threshold": threshold,
        }
        variables: dict[str, Any] = {}
        for r, run in enumerate(runs):
            self.check_stop()
            lowered = self._lower(run, f"{payload.id}-{r}", protocol, bin_mode)
            acquisitions = self._run_schedule(run, lowered, bin_mode, (rotation, threshold))
            width = run.circuit.num_clbits
            attrs[f"run{r}_shots"] = run.shots
            attrs[f"run{r}_width"] = width
            attrs[f"run{r}_circuit"] = run.circuit_index
            attrs[f"run{r}_header"] = circuit_header(run.circuit)
            attrs[f"run{r}_clbit_map"] = [list(entry) for entry in lowered.clbit_map]
            rows = 1 if bin_mode == "average" else run.shots
            iq = np.zeros((rows, width), dtype=np.complex128)
            for qubit, acq_index, clbit in lowered.clbit_map:
                iq[:, clbit] = self._bin_values(acquisitions, qubit, acq_index, bin_mode)
            if payload.meas_level == 1:
                variables[f"run{r}_iq"] = ((f"run{r}_shot", f"run{r}_clbit"), iq)
                continue
            if hardware_threshold:
                bits = (iq.real >= 0.5).astype(np.uint8)
            else:
                bits = discriminate(iq, rotation, threshold)
            observed = outcomes_from_bits(bits)
            outcomes = np.array(list(observed), dtype=np.int64)
            values = np.array(list(observed.values()), dtype=np.int64)
            variables[f"run{r}_counts"] = xr.DataArray(
                values, coords={f"run{r}_outcome": outcomes}, dims=(f"run{r}_outcome",)
            )
        return xr.Dataset(variables, attrs=attrs)

    def process_result(self, dataset: xr.Dataset, job_id: str) -> dict[str, Any]:
        """Builds the result dict (same shape as the mock executor's)."""
        entries: list[dict[str, Any]] = []
        average = dataset.attrs["meas_return"] == "avg"
        for r in range(int(dataset.attrs["n_runs"])):
            shots = int(dataset.attrs[f"run{r}_shots"])
            if f"run{r}_iq" in dataset:
                entries.append({"memory": iq_memory(dataset[f"run{r}_iq"].values, average)})
                entries[-1]["shots"] = shots
            else:
                counts = dataset[f"run{r}_counts"]
                outcomes = counts[f"run{r}_outcome"].values
                observed = dict(zip(outcomes.tolist(), counts.values.tolist(), strict=True))
                width = int(dataset.attrs[f"run{r}_width"])
                entries.append({"counts": dense_counts(observed, width), "shots": shots})
            header = header_attr(dataset.attrs.get(f"run{r}_header"))
            if header is not None:
                entries[-1]["header"] = header
        return build_result(self.name, entries)

    # -- helpers --------------------------------------------------------------------------

    def _lower(self, run: Run, name: str, protocol: str, bin_mode: str) -> Lowered:
        """Lowers one run to a gate-level schedule."""
        with warnings.catch_warnings():
            # Measure(acq_index=...) emits a FutureWarning in quantify-scheduler 0.28.
            warnings.simplefilter("ignore", FutureWarning)
            return circuit_to_schedule(
                run.circuit,
                run.shots,
                name=name,
                edges=self.setup.edges,
                protocol=protocol,
                bin_mode=bin_mode,
            )

    def _bin_values(
        self, acquisitions: Any, qubit: int, acq_index: int, bin_mode: str
    ) -> np.ndarray:
        """The values of one measurement (qubit, acq_index) in the retrieved dataset."""
        return _bin_values(acquisitions, qubit, acq_index, bin_mode)

    def _discrimination(self, payload: JobPayload) -> tuple[float, float, bool]:
        """Returns (rotation in degrees, threshold, use hardware thresholding)."""
        if payload.acq_rotation is not None and payload.acq_threshold is not None:
            return float(payload.acq_rotation), float(payload.acq_threshold), False
        if self.setup.thresholded:
            measure = self.setup.device.get_element(self.setup.thresholded[0]).measure
            return float(measure.acq_rotation()), float(measure.acq_threshold()), True
        rotation = payload.acq_rotation if payload.acq_rotation is not None else 0.0
        threshold = payload.acq_threshold if payload.acq_threshold is not None else 0.0
        return float(rotation), float(threshold), False

    def _run_schedule(
        self, run: Run, lowered: Lowered, bin_mode: str, discrimination: tuple[float, float]
    ) -> Any:
        with contextlib.chdir(self.workdir), warnings.catch_warnings():
            # Measure(acq_index=...) emits a FutureWarning in quantify-scheduler 0.28.
            warnings.simplefilter("ignore", FutureWarning)
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
                    coordinator.stop()
                raise

    def _simulate_bits(self, run: Run) -> np.ndarray:
        """Samples (shots, clbits) bits of the ideal circuit for the dummy readout."""
        from qpi.driver.executors._simulator import _memory_bits

        if self._simulator is None:
            from qiskit.providers.basic_provider import BasicSimulator
            from qiskit.transpiler import generate_preset_pass_manager

            backend = BasicSimulator()
            self._simulator = (backend, generate_preset_pass_manager(0, backend=backend))
        backend, pass_manager = self._simulator
        width = run.circuit.num_clbits
        if width == 0:
            return np.zeros((run.shots, 0), dtype=np.uint8)
        compiled = pass_manager.run(run.circuit)
        memory = backend.run(compiled, shots=run.shots, memory=True).result().get_memory(0)
        return _memory_bits(memory, run.shots, width)

    def _load_dummy_data(
        self, compiled: Any, run: Run, lowered: Lowered, bin_mode: str, discrimination: Any
    ) -> None:
        """Loads one IQ point per bin into every dummy readout sequencer of the program."""
        rotation, threshold = discrimination
        bits = self._simulate_bits(run)
        clbit_of = {(q, a): c for q, a, c in lowered.clbit_map}
        no_bits = np.zeros(run.shots, dtype=np.uint8)
        instructions = compiled.compiled_instructions
        for cluster_name, cluster in self.clusters.items():
            for module_name, module in (instructions.get(cluster_name) or {}).items():
                slot = _MODULE.search(str(module_name))
                if slot is None or not isinstance(module, dict):
                    continue
                mapping = module.get("acq_hardware_mapping") or {}
                for seq_name, channels in mapping.items():
                    seq = _SEQUENCER.match(str(seq_name))
                    settings = module["sequencers"].get(seq_name)
                    if seq is None or settings is None:
                        continue
                    length = float(getattr(settings, "integration_length_acq", None) or 1)
                    acquisitions = settings.sequence.get("acquisitions", {})
                    bins: dict[str, dict[int, tuple[complex, int]]] = {}
                    for channel, indices in channels.items():
                        for acq_index, location in indices.items():
                            clbit = clbit_of.get((int(channel), int(acq_index)))
                            column = bits[:, clbit] if clbit is not None else no_bits
                            self._fill_bins(bins, location, column, bin_mode, rotation, threshold)
                    for acq_name, info in acquisitions.items():
                        write_dummy_bins(
                            cluster,
                            (int(slot.group(1)), int(seq.group(1)), str(acq_name)),
                            int(info["num_bins"]),
                            bins.get(str(acq_name), {}),
                            threshold,
                            length,
                        )

    def _fill_bins(
        self,
        bins: dict[str, dict[int, tuple[complex, int]]],
        location: Any,
        shot_bits: np.ndarray,
        bin_mode: str,
        rotation: float,
        threshold: float,
    ) -> None:
        points = dummy_iq(shot_bits, rotation, threshold, self._rng)
        target = bins.setdefault(str(location.index), {})
        base = int(location.bin)
        if bin_mode == "average":
            # The dummy returns a bin as is, so an averaged bin holds the shot average.
            target[base] = (complex(points.mean()), int(round(float(shot_bits.mean()))))
            return
        # Appended bins are laid out repetition-major: bin = base + repetition * stride.
        stride = int(getattr(location, "stride", 1) or 1)
        for rep, (point, bit) in enumerate(zip(points, shot_bits, strict=True)):
            target[base + rep * stride] = (complex(point), int(bit))


def write_dummy_bins(
    cluster: Any,
    where: tuple[int, int, str],
    num_bins: int,
    filled: dict[int, tuple[complex, int]],
    threshold: float,
    length: float,
) -> None:
    """Loads one acquisition's bins into a dummy cluster.

    Args:
        cluster: The dummy Cluster instrument.
        where: (slot, sequencer, acquisition name).
        num_bins: Bins the program reads back.
        filled: Bin index -> (IQ point, thresholded bit); missing bins read as (threshold, 0).
        threshold: Discrimination threshold (the neutral value for unfilled bins).
        length: Integration length; the dummy returns sums, not averages.
    """
    from qblox_instruments.ieee488_2 import DummyBinnedAcquisitionData

    data = []
    for b in range(num_bins):
        value, bit = filled.get(b, (complex(threshold, 0.0), 0))
        data.append(
            DummyBinnedAcquisitionData(
                data=(value.real * length, value.imag * length), thres=bit, avg_cnt=0
            )
        )
    slot, sequencer, name = where
    cluster.set_dummy_binned_acquisition_data(
        slot_idx=slot, sequencer=sequencer, acq_index_name=name, data=data
    )


def discriminate(iq: np.ndarray, rotation: float, threshold: float) -> np.ndarray:
    """Software discrimination: rotate by `rotation` degrees, bit 1 iff real > threshold."""
    rotated = iq * np.exp(1j * np.deg2rad(rotation))
    bits: np.ndarray = (rotated.real > threshold).astype(np.uint8)
    return bits


def dummy_iq(
    bits: np.ndarray, rotation: float, threshold: float, rng: np.random.Generator
) -> np.ndarray:
    """IQ points that `discriminate` maps back to `bits` (blobs either side of the threshold)."""
    centres = threshold + np.where(bits.astype(bool), _DUMMY_OFFSET, -_DUMMY_OFFSET)
    noise = rng.normal(0.0, _DUMMY_SIGMA, size=(bits.shape[0], 2))
    # Noise on the real axis is clipped so no point crosses the threshold by accident.
    real = centres + np.clip(noise[:, 0], -_DUMMY_OFFSET / 2, _DUMMY_OFFSET / 2)
    rotated = real + 1j * noise[:, 1]
    result: np.ndarray = rotated * np.exp(-1j * np.deg2rad(rotation))
    return result


def _bin_values(acquisitions: Any, qubit: int, acq_index: int, bin_mode: str) -> np.ndarray:
    """Returns the values of one (acq_channel, acq_index) from the retrieved dataset."""
    variable = acquisitions[qubit] if qubit in acquisitions else acquisitions[str(qubit)]
    values: np.ndarray = np.asarray(variable.values)
    if bin_mode == "average":
        return values.reshape(-1)[acq_index : acq_index + 1]
    column: np.ndarray = values.reshape(values.shape[0], -1)[:, acq_index]
    return column
