"""Transmon device element and CZ edge for qblox-scheduler, and the `qblox` executor's configs.

qblox-scheduler 1.0.x ships only the abstract `DeviceElement` and `Edge` models, so gate-level
schedules cannot compile with it alone. `TransmonElement` and `CompositeSquareEdge` below are
the minimal pydantic models that give the circuit-to-device compilation what it needs:

    reset     -> IdlePulse(reset.duration) (wait for thermalisation)
    Rxy       -> DRAG pulse on `<q>:mw` at clock `<q>.01` (amplitude amp180 * theta / 180)
    Rz        -> phase shift of clock `<q>.01` (virtual Z)
    measure   -> square readout pulse on `<q>:res` at clock `<q>.ro` plus an integration
                 (IQIntegration, or ThresholdedIQIntegration for hardware thresholding)
    CZ (edge) -> square flux pulse on the parent's `<q>:fl` port plus phase corrections

Parameter names follow quantify-scheduler's BasicTransmonElement/CompositeSquareEdge
(rxy.amp180, rxy.motzoi, measure.integration_time, clock_freqs.f01, cz.square_amp, ...), so
a device config written for the `quantify` executor loads here too: its element_type paths
are mapped onto these classes (see `ELEMENT_ALIASES`).

Device config format: the same as the quantify executor's (`configs/qblox.device.example.yml`):
top-level keys are elements (`q0`) and edges (`q0_q1`); `element_type.path` is optional
(elements default to `TransmonElement`, edges to `CompositeSquareEdge`); every other key is
applied onto the model: a mapping addresses a submodule, a scalar sets a parameter.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qblox_scheduler.backends.graph_compilation import (
    DeviceCompilationConfig,
    OperationCompilationConfig,
)
from qblox_scheduler.device_under_test.device_element import DeviceElement
from qblox_scheduler.device_under_test.edge import Edge
from qblox_scheduler.operations import measurement_factories, pulse_factories, pulse_library
from qblox_scheduler.resources import BasebandClockResource
from qblox_scheduler.structure.model import Numbers, Parameter, SchedulerSubmodule

from qpi.driver.executors._quantify_device import ConfigError, convert_numbers

if TYPE_CHECKING:
    from collections.abc import Hashable

    from qblox_scheduler.schedules.schedule import TimeableSchedule

_POSITIVE = Numbers(min_value=0, max_value=1e12)
_ANY = Numbers(min_value=-1e12, max_value=1e12)
_FREQUENCY = Numbers(min_value=0, max_value=1e12, allow_nan=True)
_THRESHOLD_KEYS = ("acq_threshold", "acq_rotation")
_QBLOX_CONFIG_TYPE = "QbloxHardwareCompilationConfig"


# -- device element ----------------------------------------------------------------------


class Ports(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """Ports of a transmon; empty values default to `<element>:mw`, `:fl` and `:res`."""

    microwave: str = Parameter(docstring="Drive port.", initial_value="")
    flux: str = Parameter(
        docstring="Flux port (CZ pulses of edges with this parent).", initial_value=""
    )
    readout: str = Parameter(docstring="Readout port.", initial_value="")

    def _fill_defaults(self) -> None:
        if self.parent is None:
            return
        name = self.parent.name
        if not self.microwave:
            self.microwave = f"{name}:mw"
        if not self.flux:
            self.flux = f"{name}:fl"
        if not self.readout:
            self.readout = f"{name}:res"


class ClockFrequencies(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """Clock frequencies (Hz) of the 0-1 and 1-2 transitions and of the readout resonator."""

    f01: float = Parameter(unit="Hz", initial_value=math.nan, vals=_FREQUENCY)
    f12: float = Parameter(unit="Hz", initial_value=math.nan, vals=_FREQUENCY)
    readout: float = Parameter(unit="Hz", initial_value=math.nan, vals=_FREQUENCY)


class IdlingReset(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """Reset by waiting for the qubit to relax."""

    duration: float = Parameter(unit="s", initial_value=200e-6, vals=_POSITIVE)


class RxyDrag(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """Single-qubit rotations about an equatorial axis with a DRAG pulse."""

    amp180: float = Parameter(docstring="Amplitude of a pi pulse.", initial_value=0.1, vals=_ANY)
    motzoi: float = Parameter(docstring="DRAG (beta) coefficient.", initial_value=0.0, vals=_ANY)
    duration: float = Parameter(unit="s", initial_value=20e-9, vals=_POSITIVE)


class DispersiveMeasurement(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """Square readout pulse plus integration; acq_threshold/acq_rotation for thresholding."""

    pulse_amp: float = Parameter(initial_value=0.25, vals=_ANY)
    pulse_duration: float = Parameter(unit="s", initial_value=300e-9, vals=_POSITIVE)
    acq_delay: float = Parameter(unit="s", initial_value=0.0, vals=_POSITIVE)
    integration_time: float = Parameter(unit="s", initial_value=1e-6, vals=_POSITIVE)
    reset_clock_phase: bool = Parameter(initial_value=True)
    acq_rotation: float = Parameter(unit="deg", initial_value=0.0, vals=_ANY)
    acq_threshold: float = Parameter(initial_value=0.0, vals=_ANY)


class TransmonElement(DeviceElement):  # type: ignore[misc]  # qblox_scheduler is untyped
    """A fixed-frequency transmon for gate-level compilation with qblox-scheduler."""

    element_type: str = "TransmonElement"
    reset: IdlingReset
    rxy: RxyDrag
    measure: DispersiveMeasurement
    ports: Ports
    clock_freqs: ClockFrequencies

    def _element_config(self) -> dict[str, OperationCompilationConfig]:
        drive_clock = f"{self.name}.01"
        return {
            "reset": OperationCompilationConfig(
                factory_func=pulse_library.IdlePulse,
                factory_kwargs={"duration": self.reset.duration},
            ),
            "Rxy": OperationCompilationConfig(
                factory_func=pulse_factories.rxy_drag_pulse,
                factory_kwargs={
                    "amp180": self.rxy.amp180,
                    "beta": self.rxy.motzoi,
                    "port": self.ports.microwave,
                    "clock": drive_clock,
                    "duration": self.rxy.duration,
                },
                gate_info_factory_kwargs=["theta", "phi"],
            ),
            "Rz": OperationCompilationConfig(
                factory_func=pulse_factories.phase_shift,
                factory_kwargs={"clock": drive_clock},
                gate_info_factory_kwargs=["theta"],
            ),
            "measure": OperationCompilationConfig(
                factory_func=dispersive_measurement,
                factory_kwargs={
                    "port": self.ports.readout,
                    "clock": f"{self.name}.ro",
                    "pulse_amp": self.measure.pulse_amp,
                    "pulse_duration": self.measure.pulse_duration,
                    "acq_delay": self.measure.acq_delay,
                    "acq_duration": self.measure.integration_time,
                    "acq_label": self.name,
                    "reset_clock_phase": self.measure.reset_clock_phase,
                    "acq_rotation": self.measure.acq_rotation,
                    "acq_threshold": self.measure.acq_threshold,
                },
                gate_info_factory_kwargs=[
                    "acq_label_override",
                    "coords",
                    "acq_protocol",
                    "average_segment_repetitions",
                    "feedback_trigger_label",
                ],
            ),
        }

    def generate_device_config(self) -> DeviceCompilationConfig:
        """The operations of this element and its clocks."""
        return DeviceCompilationConfig(
            elements={self.name: self._element_config()},
            clocks={
                f"{self.name}.01": self.clock_freqs.f01,
                f"{self.name}.12": self.clock_freqs.f12,
                f"{self.name}.ro": self.clock_freqs.readout,
            },
            edges={},
        )


def dispersive_measurement(
    *,
    port: str,
    clock: str,
    pulse_amp: float,
    pulse_duration: float,
    acq_delay: float,
    acq_duration: float,
    acq_label: Hashable,
    reset_clock_phase: bool,
    acq_rotation: float,
    acq_threshold: float,
    acq_label_override: Hashable | None = None,
    coords: dict[str, Any] | None = None,
    acq_protocol: str | None = None,
    average_segment_repetitions: bool = True,
    feedback_trigger_label: str | None = None,
) -> TimeableSchedule:
    """Square readout pulse and an integration of the resonator response (Measure factory)."""
    return measurement_factories._dispersive_measurement(  # noqa: SLF001 - no public factory
        pulse_amp=pulse_amp,
        pulse_duration=pulse_duration,
        port=port,
        gate_pulse_amp=None,
        gate_port=None,
        clock=clock,
        acq_duration=acq_duration,
        acq_delay=acq_delay,
        acq_label=acq_label,
        acq_label_override=acq_label_override,
        coords=coords,
        acq_protocol=acq_protocol,
        pulse_type="SquarePulse",
        average_segment_repetitions=average_segment_repetitions,
        acq_protocol_default="IQIntegration",
        reset_clock_phase=reset_clock_phase,
        acq_weights_a=None,
        acq_weights_b=None,
        feedback_trigger_label=feedback_trigger_label,
        acq_rotation=acq_rotation,
        acq_threshold=acq_threshold,
        num_points=None,
        freq=None,
    )


# -- edge ------------------------------------------------------------------------------


class SquareCZ(SchedulerSubmodule):  # type: ignore[misc]  # qblox_scheduler is untyped
    """CZ as a square flux pulse on the parent plus virtual-Z corrections on both qubits."""

    square_amp: float = Parameter(unit="V", initial_value=0.5, vals=_ANY)
    square_duration: float = Parameter(unit="s", initial_value=20e-9, vals=_POSITIVE)
    parent_phase_correction: float = Parameter(unit="deg", initial_value=0.0, vals=_ANY)
    child_phase_correction: float = Parameter(unit="deg", initial_value=0.0, vals=_ANY)


class CompositeSquareEdge(Edge):  # type: ignore[misc]  # qblox_scheduler is untyped
    """A coupler between two `TransmonElement`s that implements CZ."""

    edge_type: str = "QpiCompositeSquareEdge"
    cz: SquareCZ

    def generate_edge_config(self) -> dict[str, dict[str, OperationCompilationConfig]]:
        """The CZ operation of this edge."""
        parent = self.parent_element
        if not isinstance(parent, TransmonElement):
            raise TypeError(f"edge {self.name}: parent must be a TransmonElement")
        return {
            self.name: {
                "CZ": OperationCompilationConfig(
                    factory_func=pulse_factories.composite_square_pulse,
                    factory_kwargs={
                        "square_port": parent.ports.flux,
                        "square_clock": BasebandClockResource.IDENTITY,
                        "square_amp": self.cz.square_amp,
                        "square_duration": self.cz.square_duration,
                        "virt_z_parent_qubit_phase": self.cz.parent_phase_correction,
                        "virt_z_parent_qubit_clock": f"{self.parent_element_name}.01",
                        "virt_z_child_qubit_phase": self.cz.child_phase_correction,
                        "virt_z_child_qubit_clock": f"{self.child_element_name}.01",
                    },
                )
            }
        }


# -- configs ---------------------------------------------------------------------------

ELEMENT_ALIASES: dict[str, type[Any]] = {
    "BasicTransmonElement": TransmonElement,
    "TransmonElement": TransmonElement,
    "CompositeSquareEdge": CompositeSquareEdge,
}
"""Class names (of any module path, e.g. quantify-scheduler's) mapped onto the models here."""


@dataclass
class QbloxSetup:
    """What the qblox executor keeps from the device config.

    Attributes:
        device: The qblox-scheduler QuantumDevice holding every element and edge.
        qubits: Element names of the form q<i>, sorted by index.
        edges: Edge names ("q0_q1").
        thresholded: Element names whose config sets both acq_threshold and acq_rotation.
    """

    device: Any
    qubits: list[str] = field(default_factory=list)
    edges: set[str] = field(default_factory=set)
    thresholded: list[str] = field(default_factory=list)


def _model_class(name: str, spec: Mapping[str, Any], is_edge: bool) -> type[Any]:
    element_type = spec.get("element_type") or {}
    if not isinstance(element_type, Mapping):
        raise ConfigError(f"device config: {name}.element_type must be a mapping")
    path = element_type.get("path")
    if path is None:
        return CompositeSquareEdge if is_edge else TransmonElement
    if not isinstance(path, str):
        raise ConfigError(f"device config: {name}.element_type.path must be a string")
    alias = ELEMENT_ALIASES.get(path.rpartition(".")[2])
    if alias is not None:
        return alias
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot import element class {path!r}: {exc}") from exc
    base = Edge if is_edge else DeviceElement
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"device config: {path!r} is not a qblox-scheduler {base.__name__}")
    return cls


def _apply(target: Any, settings: Mapping[str, Any], where: str) -> None:
    for key, value in settings.items():
        dotted = f"{where}.{key}"
        if isinstance(value, Mapping):
            sub = target.submodules.get(key)
            if sub is None:
                raise ConfigError(f"device config: unknown submodule {dotted}")
            _apply(sub, value, dotted)
            continue
        if key not in target.parameters:
            raise ConfigError(f"device config: unknown parameter {dotted}")
        try:
            setattr(target, key, convert_numbers(value))
        except Exception as exc:  # noqa: BLE001 - pydantic validation errors
            detail = str(exc).splitlines()[-1].strip() if str(exc) else type(exc).__name__
            raise ConfigError(f"device config: invalid value for {dotted}: {detail}") from exc


def normalise_hardware_config(
    hardware_config: Mapping[str, Any], cluster_prefix: str
) -> dict[str, Any]:
    """Returns a copy fit for qblox-scheduler with every cluster renamed `<prefix><name>`.

    The prefix keeps the qcodes instruments of this executor (clusters, and the `ic_<name>`
    coordinator components) apart from the quantify executor's in the same process. A
    quantify-scheduler `config_type` path is replaced by qblox-scheduler's tag.
    """
    config = dict(hardware_config)
    config_type = str(config.get("config_type", _QBLOX_CONFIG_TYPE))
    if config_type.rpartition(".")[2] == _QBLOX_CONFIG_TYPE:
        config["config_type"] = _QBLOX_CONFIG_TYPE
    description = dict(config.get("hardware_description") or {})
    clusters = {
        str(name)
        for name, entry in description.items()
        if isinstance(entry, Mapping) and entry.get("instrument_type") == "Cluster"
    }
    if not clusters:
        return config

    def rename(node: Any) -> Any:
        if isinstance(node, str):
            head, dot, rest = node.partition(".")
            if head in clusters:
                return f"{cluster_prefix}{head}{dot}{rest}"
        return node

    config["hardware_description"] = {
        (f"{cluster_prefix}{name}" if name in clusters else name): entry
        for name, entry in description.items()
    }
    connectivity = config.get("connectivity")
    if isinstance(connectivity, Mapping) and isinstance(connectivity.get("graph"), list):
        graph = [
            [rename(node) for node in edge] if isinstance(edge, list | tuple) else edge
            for edge in connectivity["graph"]
        ]
        config["connectivity"] = {**connectivity, "graph": graph}
    return config


def build_qblox_device(
    config: Mapping[str, Any], hardware_config: Mapping[str, Any], device_name: str
) -> QbloxSetup:
    """Builds a qblox-scheduler QuantumDevice from a parsed device config and hardware config.

    Raises:
        ConfigError: For an invalid config (naming the file key at fault).
    """
    from qblox_scheduler.device_under_test import QuantumDevice

    setup = QbloxSetup(device=QuantumDevice(device_name))
    # Elements first: edges reference their elements by name.
    ordered = sorted(config.items(), key=lambda item: "_" in str(item[0]))
    for raw_name, spec in ordered:
        name = str(raw_name)
        if not isinstance(spec, Mapping):
            raise ConfigError(f"device config: {name} must be a mapping")
        is_edge = "_" in name
        cls = _model_class(name, spec, is_edge)
        try:
            if is_edge:
                parent, _, child = name.partition("_")
                model = cls(parent, child)
            else:
                model = cls(name)
        except Exception as exc:  # noqa: BLE001 - pydantic validation errors
            raise ConfigError(f"device config: cannot create {name}: {exc}") from exc
        settings = {k: v for k, v in spec.items() if k != "element_type"}
        _apply(model, settings, name)
        try:
            if is_edge:
                setup.device.add_edge(model)
            else:
                setup.device.add_element(model)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"device config: cannot add {name}: {exc}") from exc
        if is_edge:
            setup.edges.add(model.name)
            continue
        if re.fullmatch(r"q\d+", name):
            setup.qubits.append(name)
        measure = settings.get("measure")
        if isinstance(measure, Mapping) and all(
            measure.get(k) is not None for k in _THRESHOLD_KEYS
        ):
            setup.thresholded.append(name)
    try:
        setup.device.hardware_config = dict(hardware_config)
    except Exception as exc:  # noqa: BLE001 - pydantic validation errors
        raise ConfigError(f"invalid hardware config: {exc}") from exc
    setup.qubits.sort(key=lambda q: int(q[1:]))
    return setup
