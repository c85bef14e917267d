// Administrators' registry actions: QPUs and drivers.
import { api, ApiError, call } from "../api/client";
import { createQpuRecord, deleteDriverRecord, deleteQpuRecord } from "../api/collections";
import type { DriverCreated } from "../api/types";
import { qpus, removeQpu, upsertQpu } from "./data";

export const EXECUTOR_KINDS = ["mock", "qiskit_aer", "quantify", "qblox", "presto"] as const;
export const DRIVER_KINDS = [...EXECUTOR_KINDS, "bluefors_gen1", "custom"] as const;
export const LANGUAGES = ["python", "typescript", "go"] as const;
export const CUSTOM_EVENTS = ["JobDispatch", "JobResult", "CryostatReading"] as const;

export async function registerDriver(body: {
  name: string;
  qpu: string;
  kind: string;
  language: string;
  events?: string[];
}): Promise<DriverCreated> {
  return call(api.POST("/api/op/drivers/create", { body: { ...body, enabled: true } }));
}

/** Registers a QPU with its first driver; returns the driver's one-time credentials. */
export async function registerQpu(name: string, numQubits: number | null, kind: string): Promise<DriverCreated> {
  const qpu = await createQpuRecord({ name, ...(numQubits ? { num_qubits: numQubits } : {}) });
  try {
    const driver = await registerDriver({ name: `${name}-driver`, qpu: qpu.id, kind, language: "python" });
    upsertQpu(qpu);
    return driver;
  } catch (error) {
    // Without a driver the QPU would be unusable; undo so the name can be used again.
    await deleteQpuRecord(qpu.id).catch(() => undefined);
    throw error instanceof ApiError ? error : new ApiError(0, String(error));
  }
}

export async function toggleQpu(id: string, enabled: boolean): Promise<void> {
  const changed = await call(api.POST("/api/op/qpu/toggle", { body: { id, enabled } }));
  // Only the switch itself: the status in the answer may already be older than the status
  // the feed pushed meanwhile (the server re-derives it after the switch).
  qpus.set((prev) => {
    const current = prev.get(changed.id);
    return current ? new Map(prev).set(changed.id, { ...current, enabled: changed.enabled }) : prev;
  });
}

export async function deleteQpu(id: string): Promise<void> {
  await deleteQpuRecord(id);
  removeQpu(id);
}

export async function toggleDriver(id: string, enabled: boolean) {
  return call(api.POST("/api/op/drivers/toggle", { body: { id, enabled } }));
}

export async function deleteDriver(id: string): Promise<void> {
  await deleteDriverRecord(id);
}
