// Record shapes. Routes with response models come straight from the generated schema; the
// generic collection API (`/api/collections/{name}/records`) returns untyped items, so its
// records are described here from the gateway's records module.
import type { Schemas } from "./client";

export type Qpu = Schemas["QpuOut"];
export type Job = Schemas["JobOut"];
export type JobStatus = Job["status"];
export type DriverCreated = Schemas["DriverCreatedOut"];

/** A `users` / `_superusers` auth record. */
export interface UserRecord {
  id: string;
  email: string;
  name?: string;
  qpu_seconds: number;
  is_superuser?: boolean;
  collectionName?: string;
}

/** A `quantum_jobs` collection record: a Job with display names and lease facts. */
export interface JobRecord extends Job {
  qpu_name?: string;
  user_email?: string;
  attempt?: number;
  started_at?: string;
}

/** A `drivers` collection record. */
export interface DriverRecord {
  id: string;
  name: string;
  qpu: string;
  kind: string;
  language: string;
  status: "online" | "offline" | string;
  enabled: boolean;
  host: string;
  version: string;
  transport: string;
  last_seen: string;
  created: string;
}

/** A `notifications` collection record (also pushed as the SSE `notification` event). */
export interface NotificationRecord {
  id: string;
  title: string;
  description: string;
  target_users: string[];
  /** Whether the caller dismissed it (administrators list every notification). */
  dismissed?: boolean;
  start_time: string;
  end_time: string;
  created: string;
  updated: string;
}

/** The SSE `notification` event for a deleted notification. */
export interface DeletedNotification {
  id: string;
  deleted: true;
}

/** A `time_slots` collection record. */
export interface TimeSlotRecord {
  id: string;
  start_time: string;
  end_time: string;
  booked_by: string;
  qpu: string;
  created: string;
  expand?: { booked_by?: UserRecord };
}

/** A page of the collection API. */
export interface Page<T> {
  page: number;
  perPage: number;
  totalItems: number;
  totalPages: number;
  items: T[];
}

/** `GET /api/collections/{auth collection}/auth-methods`. */
export interface AuthMethods {
  password: { enabled: boolean; identityFields: string[] };
  oauth2: {
    enabled: boolean;
    providers: { name: string; displayName?: string; authURL?: string }[];
  };
}

export const TERMINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);
