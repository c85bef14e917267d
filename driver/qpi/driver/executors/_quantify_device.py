"""Config loading for the `quantify` executor: device YAML -> QuantumDevice, dummy clusters.

Device config format (see `configs/quantify.device.example.yml`): each top-level key names a
device element (`q0`) or an edge (`q0_q1`). `element_type: {path, args, kwargs}` gives the
class to build; every other key is applied onto the element: a mapping addresses a QCoDeS
submodule (recursively), anything else is the value of a parameter. Strings that look like
numbers ("5e9") are converted to floats.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Measurement settings that, when present in the device config, enable hardware thresholding.
_THRESHOLD_KEYS = ("acq_threshold", "acq_rotation")

_MODULE_TYPES = {
    "QCM": "CLUSTER_QCM",
    "QRM": "CLUSTER_QRM",
    "QCM_RF": "CLUSTER_QCM_RF",
    "QRM_RF": "CLUSTER_QRM_RF",
    "QTM": "CLUSTER_QTM",
}


class ConfigError(ValueError):
    """A device or hardware config file is invalid; the message names the file and key."""


@dataclass
class DeviceSetup:
    """What the executor keeps from the device config.

    Attributes:
        device: The QuantumDevice holding every element and edge.
        instruments: Every QCoDeS instrument created (closed in reverse order).
        qubits: Element names of the form q<i>, sorted by index.
        edges: Edge names ("q0_q1").
        thresholded: Element names whose config sets both acq_threshold and acq_rotation.
    """

    device: Any
    instruments: list[Any] = field(default_factory=list)
    qubits: list[str] = field(default_factory=list)
    edges: set[str] = field(default_factory=set)
    thresholded: list[str] = field(default_factory=list)


def load_mapping(path: Path) -> dict[str, Any]:
    """Reads a JSON or YAML mapping, chosen by suffix (.json -> JSON, otherwise YAML).

    Raises:
        ConfigError: If the file is missing, unparsable or not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        if Path(path).suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - JSON and YAML raise different error classes
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping at the top level")
    return data


def convert_numbers(value: Any) -> Any:
    """Turns numeric strings ("5e9", "0.25") into floats, recursively through containers."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, Mapping):
        return {k: convert_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert_numbers(v) for v in value]
    return value


def _import_class(path: str) -> type:
    # Configs written for qblox-scheduler use the same class layout under another namespace.
    if path.startswith("qblox_scheduler."):
        path = "quantify_scheduler." + path.removeprefix("qblox_scheduler.")
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot import element class {path!r}: {exc}") from exc
    if not isinstance(cls, type):
        raise ConfigError(f"{path!r} is not a class")
    return cls


def apply_settings(target: Any, settings: Mapping[str, Any], where: str) -> None:
    """Sets parameters of a QCoDeS instrument or submodule from a nested mapping.

    Raises:
        ConfigError: Naming the dotted key when a submodule/parameter is unknown or a value
            is rejected by the parameter's validator.
    """
    for key, value in settings.items():
        dotted = f"{where}.{key}"
        if isinstance(value, Mapping):
            sub = target.submodules.get(key) if hasattr(target, "submodules") else None
            if sub is None:
                raise ConfigError(f"device config: unknown submodule {dotted}")
            apply_settings(sub, value, dotted)
            continue
        parameter = target.parameters.get(key) if hasattr(target, "parameters") else None
        if parameter is None:
            raise ConfigError(f"device config: unknown parameter {dotted}")
        try:
            parameter(convert_numbers(value))
        except Exception as exc:  # noqa: BLE001 - validators raise several classes
            raise ConfigError(f"device config: invalid value for {dotted}: {exc}") from exc


def _close_stale(name: str) -> None:
    """Closes a leftover QCoDeS instrument of the same name (e.g. from a crashed executor)."""
    from qcodes.instrument import Instrument

    if Instrument.exist(name):
        log.warning("closing leftover qcodes instrument %r", name)
        Instrument.find_instrument(name).close()


def build_device(config: Mapping[str, Any], hardware_config: Mapping[str, Any]) -> DeviceSetup:
    """Builds a QuantumDevice from a parsed device config and a hardware config dict.

    Args:
        config: The parsed device config (top-level keys are element/edge names).
        hardware_config: The hardware compilation config (a QbloxHardwareCompilationConfig).

    Raises:
        ConfigError: For an invalid config.
    """
    from quantify_scheduler.device_under_test import QuantumDevice
    from quantify_scheduler.device_under_test.edge import Edge

    device_name = "qpi_quantum_device"
    _close_stale(device_name)
    setup = DeviceSetup(device=QuantumDevice(device_name))
    setup.instruments.append(setup.device)
    try:
        # Elements first: edges reference their elements by name.
        ordered = sorted(config.items(), key=lambda item: "_" in str(item[0]))
        for name, spec in ordered:
            _add_entry(setup, str(name), spec, Edge)
        try:
            setup.device.hardware_config(dict(hardware_config))
        except Exception as exc:  # noqa: BLE001 - pydantic validation errors
            raise ConfigError(f"invalid hardware config: {exc}") from exc
    except BaseException:
        close_instruments(setup.instruments)
        raise
    setup.qubits.sort(key=lambda q: int(q[1:]))
    return setup


def _add_entry(setup: DeviceSetup, name: str, spec: Any, edge_base: type) -> None:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("element_type"), Mapping):
        raise ConfigError(f"device config: {name} needs an element_type mapping with a path")
    element_type = spec["element_type"]
    path = element_type.get("path")
    if not isinstance(path, str):
        raise ConfigError(f"device config: {name}.element_type.path must be a string")
    cls = _import_class(path)
    is_edge = issubclass(cls, edge_base)
    args = list(element_type.get("args") or [])
    kwargs = dict(element_type.get("kwargs") or {})
    if not args:
        if is_edge:
            parent, sep, child = name.partition("_")
            if not sep:
                raise ConfigError(f"device config: edge {name} must be named <parent>_<child>")
            args = [parent, child]
        else:
            args = [name]
    instrument_name = name if not is_edge else "_".join(str(a) for a in args)
    _close_stale(instrument_name)
    try:
        element = cls(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - constructors raise anything
        raise ConfigError(f"device config: cannot create {name} ({path}): {exc}") from exc
    setup.instruments.append(element)
    settings = {k: v for k, v in spec.items() if k != "element_type"}
    apply_settings(element, settings, name)
    if is_edge:
        setup.device.add_edge(element)
        setup.edges.add(element.name)
        return
    setup.device.add_element(element)
    if re.fullmatch(r"q\d+", element.name):
        setup.qubits.append(element.name)
    measure = settings.get("measure")
    if isinstance(measure, Mapping) and all(measure.get(k) is not None for k in _THRESHOLD_KEYS):
        setup.thresholded.append(element.name)


def close_instruments(instruments: list[Any]) -> None:
    """Closes instruments in reverse creation order; already-closed ones are skipped."""
    while instruments:
        instrument = instruments.pop()
        try:
            instrument.close()
        except Exception:  # noqa: BLE001 - e.g. already closed by Instrument.close_all()
            log.debug("closing %r failed", instrument, exc_info=True)


def cluster_descriptions(hardware_config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Returns the Cluster entries of `hardware_description` keyed by cluster name."""
    description = hardware_config.get("hardware_description") or {}
    return {
        str(name): dict(entry)
        for name, entry in description.items()
        if isinstance(entry, Mapping) and entry.get("instrument_type") == "Cluster"
    }


def make_cluster(name: str, entry: Mapping[str, Any], is_dummy: bool) -> Any:
    """Creates a qblox-instruments Cluster: a dummy whose modules match `entry`, or a real one.

    Raises:
        ConfigError: For an unknown module type or a real cluster without an `ip`.
    """
    from qblox_instruments import Cluster, ClusterType

    _close_stale(name)
    if not is_dummy:
        ip = entry.get("ip")
        if not ip:
            raise ConfigError(f"hardware config: cluster {name} needs an 'ip' (or use is_dummy)")
        return Cluster(name, identifier=str(ip))
    dummy_cfg: dict[int, Any] = {}
    for slot, module in (entry.get("modules") or {}).items():
        kind = module.get("instrument_type") if isinstance(module, Mapping) else module
        type_name = _MODULE_TYPES.get(str(kind))
        if type_name is None or not hasattr(ClusterType, type_name):
            raise ConfigError(
                f"hardware config: unknown module type {kind!r} in {name} slot {slot}"
            )
        dummy_cfg[int(slot)] = getattr(ClusterType, type_name)
    return Cluster(name, dummy_cfg=dummy_cfg)
