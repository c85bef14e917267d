// Shared live data: QPUs, the caller's active jobs, notifications, bookings. Each slice is
// loaded when the live feed (re)connects and then kept current by its events.
import { api, call } from "../api/client";
import { listJobs, listNotifications, listTimeSlots, quote } from "../api/collections";
import type {
  DeletedNotification,
  Job,
  NotificationRecord,
  Qpu,
  TimeSlotRecord,
} from "../api/types";
import { TERMINAL } from "../api/types";
import { parseTime, timeValue } from "../lib/format";
import { listen, loadWithEvents } from "../lib/realtime";
import { reloadRecord, session } from "./session";
import { createStore, useStore } from "./store";

const ACTIVE_LIMIT = 500;

// -- QPUs ---------------------------------------------------------------------------------

export const qpus = createStore<Map<string, Qpu>>(new Map());
export const qpusLoaded = createStore(false);

export async function loadQpus(): Promise<void> {
  const [list, missed] = await loadWithEvents(() => call(api.GET("/api/qpus", {})));
  const map = new Map(list.map((q) => [q.id, q]));
  for (const event of missed) if ("qpu" in event) map.set(event.qpu.id, event.qpu);
  qpus.set(map);
  qpusLoaded.set(true);
}

export function upsertQpu(qpu: Qpu): void {
  qpus.set((prev) => new Map(prev).set(qpu.id, qpu));
}

export function removeQpu(id: string): void {
  qpus.set((prev) => {
    const next = new Map(prev);
    next.delete(id);
    return next;
  });
}

export function useQpus(): Qpu[] {
  const map = useStore(qpus);
  return [...map.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function qpuName(id: string): string {
  return qpus.get().get(id)?.name ?? (id ? id : "—");
}

// -- active jobs (queue metric) -----------------------------------------------------------

/** Status of each of the caller's pending or running jobs, by id. */
export const activeJobs = createStore<Map<string, Job["status"]>>(new Map());
/** Pending and running jobs; a count marked capped is a lower bound (the server's count
 * stopped at its cap). */
export interface QueueCounts {
  pending: number;
  running: number;
  pendingCapped: boolean;
  runningCapped: boolean;
}

/** Totals when there are more active jobs than we track one by one. */
export const activeOverflow = createStore<QueueCounts | null>(null);

async function activeOf(status: "pending" | "running") {
  return listJobs({
    filter: `status=${quote(status)}`,
    sort: "-created",
    perPage: ACTIVE_LIMIT,
  });
}

export async function loadActiveJobs(): Promise<void> {
  const [[pending, running], missed] = await loadWithEvents(() =>
    Promise.all([activeOf("pending"), activeOf("running")]),
  );
  let map = new Map<string, Job["status"]>();
  for (const job of [...pending.items, ...running.items]) map.set(job.id, job.status);
  for (const event of missed) if ("job" in event) map = withJob(map, event.job);
  activeJobs.set(map);
  const overflow = pending.totalItems > ACTIVE_LIMIT || running.totalItems > ACTIVE_LIMIT;
  activeOverflow.set(
    overflow
      ? {
          pending: pending.totalItems,
          running: running.totalItems,
          pendingCapped: pending.totalItemsCapped,
          runningCapped: running.totalItemsCapped,
        }
      : null,
  );
}

/** `map` with `job`'s new status (terminal jobs leave it); the same map if nothing changed. */
function withJob(map: Map<string, Job["status"]>, job: Job): Map<string, Job["status"]> {
  const known = map.get(job.id);
  if (TERMINAL.has(job.status) ? known === undefined : known === job.status) return map;
  const next = new Map(map);
  if (TERMINAL.has(job.status)) next.delete(job.id);
  else next.set(job.id, job.status);
  return next;
}

function trackJob(job: Job): void {
  activeJobs.set((prev) => withJob(prev, job));
}

export function useQueueCounts(): QueueCounts {
  const map = useStore(activeJobs);
  const overflow = useStore(activeOverflow);
  if (overflow) return overflow;
  let pending = 0;
  let running = 0;
  for (const status of map.values()) {
    if (status === "pending") pending += 1;
    else if (status === "running") running += 1;
  }
  return { pending, running, pendingCapped: false, runningCapped: false };
}

// -- notifications --------------------------------------------------------------------------

export const notifications = createStore<NotificationRecord[]>([]);

/** Whether the signed-in user should see `note` in the bell now. */
export function visibleToMe(note: NotificationRecord, now: number = Date.now()): boolean {
  const me = session.get();
  if (!me || note.dismissed) return false;
  // Administrators list every notification; users only receive what is meant for them.
  if (me.admin && note.target_users.length > 0 && !note.target_users.includes(me.record.id)) {
    return false;
  }
  const start = parseTime(note.start_time);
  const end = parseTime(note.end_time);
  return (!start || start.getTime() <= now) && (!end || end.getTime() > now);
}

export async function loadNotifications(): Promise<void> {
  const [page, missed] = await loadWithEvents(() =>
    listNotifications({ sort: "-created", perPage: 200 }),
  );
  let list = page.items;
  for (const event of missed) if ("notification" in event) list = withNotification(list, event.notification);
  notifications.set(list);
}

function withNotification(
  list: NotificationRecord[],
  note: NotificationRecord | DeletedNotification,
): NotificationRecord[] {
  const rest = list.filter((n) => n.id !== note.id);
  if ("deleted" in note) return rest;
  return [note, ...rest].sort((a, b) => timeValue(b.created) - timeValue(a.created));
}

function applyNotification(note: NotificationRecord | DeletedNotification): void {
  notifications.set((prev) => withNotification(prev, note));
}

export function markDismissed(id: string): void {
  notifications.set((prev) => prev.map((n) => (n.id === id ? { ...n, dismissed: true } : n)));
}

export function useVisibleNotifications(): NotificationRecord[] {
  const all = useStore(notifications);
  useStore(session);
  return all.filter((n) => visibleToMe(n));
}

// -- bookings --------------------------------------------------------------------------------

/** Bookings that have not ended yet, soonest first (the "Next Booking" card). */
export const upcomingSlots = createStore<TimeSlotRecord[]>([]);

/** The booker's e-mail when the slot was read with `expand=booked_by`. */
export function bookerEmail(slot: TimeSlotRecord): string | undefined {
  const user = slot.expand?.booked_by as { email?: unknown } | undefined;
  return typeof user?.email === "string" ? user.email : undefined;
}

export async function loadUpcomingSlots(): Promise<void> {
  const page = await listTimeSlots({
    filter: "end_time > @now",
    sort: "start_time",
    perPage: 50,
    expand: "booked_by",
  });
  upcomingSlots.set(page.items);
}

// -- wiring ------------------------------------------------------------------------------------

/** Reload everything after the feed (re)connects; keep slices current from its events. */
export function startLiveData(onError: (error: unknown) => void): () => void {
  let balanceTimer: number | undefined;
  let recountTimer: number | undefined;
  const sync = () => {
    const loads = [loadQpus(), loadActiveJobs(), loadNotifications(), loadUpcomingSlots()];
    for (const load of loads) load.catch(onError);
  };
  return listen({
    onSync: sync,
    onQpu: upsertQpu,
    onJob(job) {
      trackJob(job);
      if (activeOverflow.get()) {
        // Too many active jobs to track one by one: recount once the burst settles.
        window.clearTimeout(recountTimer);
        recountTimer = window.setTimeout(() => loadActiveJobs().catch(onError), 1000);
      }
      if (TERMINAL.has(job.status) && job.user_id === session.get()?.record.id) {
        // A finished job was charged: re-read the balance once the burst settles.
        window.clearTimeout(balanceTimer);
        balanceTimer = window.setTimeout(() => reloadRecord().catch(onError), 300);
      }
    },
    onNotification: applyNotification,
  });
}

export function resetData(): void {
  qpus.set(new Map());
  qpusLoaded.set(false);
  activeJobs.set(new Map());
  activeOverflow.set(null);
  notifications.set([]);
  upcomingSlots.set([]);
}
