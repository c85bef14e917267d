"""QPU and driver registry methods (reading needs any credentials; changes need admin)."""

from __future__ import annotations

from collections.abc import Iterable

from qpi.sdk._base import ClientBase, field_mask
from qpi.sdk.models import Driver, Qpu
from qpi.sdk.records import CreatedDriver, CreatedQpu
from qpi.v1 import qpu_pb2, qpu_service_pb2


def _edges(coupling_map: Iterable[tuple[int, int]]) -> list[qpu_pb2.CouplingEdge]:
    return [qpu_pb2.CouplingEdge(source=a, target=b) for a, b in coupling_map]


class QpusMixin(ClientBase):
    """Methods of :class:`qpi.sdk.QPIClient` about QPUs and drivers."""

    def list_qpus(self, *, online_only: bool = False) -> list[Qpu]:
        """Returns every QPU, ordered by name."""
        request = qpu_service_pb2.ListQpusRequest(online_only=online_only)
        return list(self._paginate(self._qpus.ListQpus, request, "qpus", Qpu._from_proto))

    def get_qpu(self, name_or_id: str) -> Qpu:
        """Returns a QPU by id or name (raises :class:`QpuNotFoundError`)."""
        request = qpu_service_pb2.GetQpuRequest(id=name_or_id)
        return Qpu._from_proto(self._unary(self._qpus.GetQpu, request).qpu)

    def create_qpu(
        self,
        name: str,
        *,
        num_qubits: int = 0,
        enabled: bool = True,
        executor_type: str = "mock",
        coupling_map: Iterable[tuple[int, int]] = (),
        native_gates: Iterable[str] = (),
        create_driver: bool = True,
    ) -> CreatedQpu:
        """Registers a QPU (administrators) and, by default, a first driver for it.

        Returns:
            The QPU, the driver, its raw access token (shown once) and the CA fingerprint
            the driver should pin.

        Example:
            >>> created = admin.create_qpu("qpu-1", num_qubits=5)
            >>> created.access_token.startswith("qpi_")
            True
        """
        qpu = qpu_pb2.Qpu(
            name=name,
            enabled=enabled,
            num_qubits=num_qubits,
            coupling_map=_edges(coupling_map),
            native_gates=list(native_gates),
        )
        request = qpu_service_pb2.CreateQpuRequest(
            qpu=qpu, create_driver=create_driver, driver_kind=executor_type
        )
        return CreatedQpu._from_proto(self._unary(self._qpus.CreateQpu, request))

    def update_qpu(
        self,
        qpu_id: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        num_qubits: int | None = None,
        coupling_map: Iterable[tuple[int, int]] | None = None,
        native_gates: Iterable[str] | None = None,
    ) -> Qpu:
        """Changes the given fields of a QPU (administrators); others stay as they are."""
        qpu = qpu_pb2.Qpu(id=qpu_id)
        paths: list[str] = []
        if name is not None:
            qpu.name = name
            paths.append("name")
        if enabled is not None:
            qpu.enabled = enabled
            paths.append("enabled")
        if num_qubits is not None:
            qpu.num_qubits = num_qubits
            paths.append("num_qubits")
        if coupling_map is not None:
            qpu.coupling_map.extend(_edges(coupling_map))
            paths.append("coupling_map")
        if native_gates is not None:
            qpu.native_gates.extend(native_gates)
            paths.append("native_gates")
        request = qpu_service_pb2.UpdateQpuRequest(qpu=qpu, update_mask=field_mask(*paths))
        return Qpu._from_proto(self._unary(self._qpus.UpdateQpu, request).qpu)

    def toggle_qpu(self, qpu_id: str, enabled: bool) -> Qpu:
        """Enables or disables a QPU (administrators)."""
        return self.update_qpu(qpu_id, enabled=enabled)

    def delete_qpu(self, qpu_id: str) -> None:
        """Deletes a QPU, its drivers and bookings; its jobs stay readable by their owners
        (under the QPU's name) and the unfinished ones are cancelled."""
        self._unary(self._qpus.DeleteQpu, qpu_service_pb2.DeleteQpuRequest(id=qpu_id))

    def list_drivers(self, *, qpu_id: str = "") -> list[Driver]:
        """Returns the driver registrations (administrators), optionally of one QPU."""
        request = qpu_service_pb2.ListDriversRequest(qpu_id=qpu_id)
        return list(self._paginate(self._qpus.ListDrivers, request, "drivers", Driver._from_proto))

    def get_driver(self, driver_id: str) -> Driver:
        """Returns one driver registration (administrators)."""
        request = qpu_service_pb2.GetDriverRequest(id=driver_id)
        return Driver._from_proto(self._unary(self._qpus.GetDriver, request).driver)

    def create_driver(
        self, qpu_id: str, name: str, *, kind: str = "mock", language: str = "python"
    ) -> CreatedDriver:
        """Registers another driver for a QPU; the access token is returned once."""
        driver = qpu_pb2.Driver(qpu_id=qpu_id, name=name, kind=kind, language=language)
        request = qpu_service_pb2.CreateDriverRequest(driver=driver)
        return CreatedDriver._from_proto(self._unary(self._qpus.CreateDriver, request))

    def update_driver(
        self, driver_id: str, *, name: str | None = None, enabled: bool | None = None
    ) -> Driver:
        """Renames or enables/disables a driver (disabling disconnects it)."""
        driver = qpu_pb2.Driver(id=driver_id)
        paths: list[str] = []
        if name is not None:
            driver.name = name
            paths.append("name")
        if enabled is not None:
            driver.enabled = enabled
            paths.append("enabled")
        request = qpu_service_pb2.UpdateDriverRequest(driver=driver, update_mask=field_mask(*paths))
        return Driver._from_proto(self._unary(self._qpus.UpdateDriver, request).driver)

    def delete_driver(self, driver_id: str) -> None:
        """Deletes a driver registration; its running job returns to the queue."""
        self._unary(self._qpus.DeleteDriver, qpu_service_pb2.DeleteDriverRequest(id=driver_id))
