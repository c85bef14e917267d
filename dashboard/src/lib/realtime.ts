// The live feed: one EventSource on /api/realtime/events per tab. Every change the dashboard
// shows after its first load arrives here (pushed, never polled). After each (re)connection
// the listeners' `onSync` runs, so whatever changed while disconnected is read once again.
import type { DeletedNotification, Job, NotificationRecord, Qpu } from "../api/types";
import { createStore, useStore } from "../state/store";

export type FeedStatus = "connecting" | "live" | "reconnecting";

export interface FeedListener {
  onJob?(job: Job): void;
  onQpu?(qpu: Qpu): void;
  onNotification?(note: NotificationRecord | DeletedNotification): void;
  /** The stream is (again) established: reload state that events may have missed. */
  onSync?(): void;
}

const listeners = new Set<FeedListener>();
export const feedStatus = createStore<FeedStatus>("connecting");

let source: EventSource | null = null;
let retryTimer: number | undefined;
let retryDelay = 1000;

function emit<K extends keyof FeedListener>(key: K, ...args: Parameters<NonNullable<FeedListener[K]>>) {
  for (const listener of [...listeners]) {
    const fn = listener[key] as ((...a: unknown[]) => void) | undefined;
    try {
      fn?.(...args);
    } catch (error) {
      // One listener's bug must not starve the others of events.
      console.warn("live feed listener failed", error);
    }
  }
}

function parse<T>(event: MessageEvent<string>): T | null {
  try {
    return JSON.parse(event.data) as T;
  } catch {
    return null;
  }
}

/** Opens the feed with `token` (EventSource cannot send headers, so it goes in the query). */
export function connectFeed(token: string, onClosed: () => void): void {
  disconnectFeed();
  feedStatus.set("connecting");
  const url = `/api/realtime/events?token=${encodeURIComponent(token)}`;
  const es = new EventSource(url);
  source = es;
  es.addEventListener("open", () => {
    retryDelay = 1000;
    feedStatus.set("live");
    emit("onSync");
  });
  es.addEventListener("job", (e) => {
    const job = parse<Job>(e as MessageEvent<string>);
    if (job) emit("onJob", job);
  });
  es.addEventListener("qpu", (e) => {
    const qpu = parse<Qpu>(e as MessageEvent<string>);
    if (qpu) emit("onQpu", qpu);
  });
  es.addEventListener("notification", (e) => {
    const note = parse<NotificationRecord | DeletedNotification>(e as MessageEvent<string>);
    if (note) emit("onNotification", note);
  });
  es.addEventListener("error", () => {
    if (source !== es) return;
    feedStatus.set("reconnecting");
    if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // Closed for good (e.g. 401 or the server was down): check the session, retry with backoff.
    es.close();
    source = null;
    onClosed();
    retryTimer = window.setTimeout(() => {
      if (source === null) connectFeed(token, onClosed);
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15_000);
  });
}

export function disconnectFeed(): void {
  window.clearTimeout(retryTimer);
  source?.close();
  source = null;
}

/** Registers a listener for the lifetime of the returned unsubscribe function. */
export function listen(listener: FeedListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export type FeedEvent =
  | { job: Job }
  | { qpu: Qpu }
  | { notification: NotificationRecord | DeletedNotification };

/**
 * Runs `load` (a read of current state) and returns its result with the events that arrived
 * while it ran. A read answered before a change but delivered after its event would otherwise
 * overwrite newer state; callers replay these events, in order, on top of what they read.
 */
export async function loadWithEvents<T>(load: () => Promise<T>): Promise<[T, FeedEvent[]]> {
  const missed: FeedEvent[] = [];
  const stop = listen({
    onJob: (job) => missed.push({ job }),
    onQpu: (qpu) => missed.push({ qpu }),
    onNotification: (notification) => missed.push({ notification }),
  });
  try {
    return [await load(), missed];
  } finally {
    stop();
  }
}

export function useFeedStatus(): FeedStatus {
  return useStore(feedStatus);
}
