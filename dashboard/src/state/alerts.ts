// Messages for the user (failed actions, confirmations), shown in a live region.
import { ApiError } from "../api/client";
import { createStore, useStore } from "./store";

export interface Alert {
  id: number;
  kind: "error" | "success";
  text: string;
}

const alerts = createStore<Alert[]>([]);
let next = 1;

export function pushAlert(kind: Alert["kind"], text: string, ttlMs = 8000): void {
  const id = next++;
  alerts.set((prev) => [...prev.slice(-4), { id, kind, text }]);
  window.setTimeout(() => dismissAlert(id), ttlMs);
}

export function reportError(error: unknown, context = ""): void {
  const text = error instanceof ApiError ? error.detail : String(error);
  pushAlert("error", context ? `${context}: ${text}` : text);
}

export function dismissAlert(id: number): void {
  alerts.set((prev) => prev.filter((a) => a.id !== id));
}

export function useAlerts(): Alert[] {
  return useStore(alerts);
}
