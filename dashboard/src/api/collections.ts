// Typed helpers over the PocketBase-style collection routes: the gateway documents each
// collection's routes and record schema separately, so every call here is checked against
// the generated `paths`.
import { api, call } from "./client";

export interface ListQuery {
  page?: number;
  perPage?: number;
  sort?: string;
  filter?: string;
  expand?: string;
}

/** Record fields for a create or update (the server validates them). */
type Fields = Record<string, unknown>;

const at = (id: string) => ({ params: { path: { record_id: id } } });

export const listJobs = (query: ListQuery) =>
  call(api.GET("/api/collections/quantum_jobs/records", { params: { query } }));
export const viewJob = (id: string) => call(api.GET("/api/collections/quantum_jobs/records/{record_id}", at(id)));

export const listNotifications = (query: ListQuery) =>
  call(api.GET("/api/collections/notifications/records", { params: { query } }));

export const listTimeSlots = (query: ListQuery) =>
  call(api.GET("/api/collections/time_slots/records", { params: { query } }));
export const createTimeSlot = (body: Fields) => call(api.POST("/api/collections/time_slots/records", { body }));
export const deleteTimeSlot = (id: string) =>
  call(api.DELETE("/api/collections/time_slots/records/{record_id}", { ...at(id), parseAs: "text" }));

export const listDrivers = (query: ListQuery) =>
  call(api.GET("/api/collections/drivers/records", { params: { query } }));
export const deleteDriverRecord = (id: string) =>
  call(api.DELETE("/api/collections/drivers/records/{record_id}", { ...at(id), parseAs: "text" }));

export const createQpuRecord = (body: Fields) => call(api.POST("/api/collections/qpus/records", { body }));
export const deleteQpuRecord = (id: string) =>
  call(api.DELETE("/api/collections/qpus/records/{record_id}", { ...at(id), parseAs: "text" }));

export const viewUser = (id: string) => call(api.GET("/api/collections/users/records/{record_id}", at(id)));

export const createTimeRequest = (body: Fields) =>
  call(api.POST("/api/collections/qpu_time_requests/records", { body }));

/** Quotes a value for a collection filter expression. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
