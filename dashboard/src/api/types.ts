// Record shapes, all from the generated schema (the gateway declares a response model for
// every route, collections included).
import type { Schemas } from "./client";

export type Qpu = Schemas["QpuOut"];
export type Job = Schemas["JobOut"];
export type JobStatus = Job["status"];
export type DriverCreated = Schemas["DriverCreatedOut"];
export type UserRecord = Schemas["UserRecord"];
export type JobRecord = Schemas["JobRecord"];
export type DriverRecord = Schemas["DriverRecord"];
export type NotificationRecord = Schemas["NotificationRecord"];
export type TimeSlotRecord = Schemas["TimeSlotRecord"];
export type AuthMethods = Schemas["AuthMethodsOut"];

/** The SSE `notification` event for a deleted notification. */
export interface DeletedNotification {
  id: string;
  deleted: true;
}

/** A page of the collection API. */
export interface Page<T> {
  page: number;
  perPage: number;
  totalItems: number;
  /** The count stopped at the server's cap: at least `totalItems` match (and there are at
   * least `totalPages` pages). */
  totalItemsCapped: boolean;
  totalPages: number;
  items: T[];
}

export const TERMINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);
