// Display helpers for the gateway's timestamps ("2026-01-01 10:00:00.000Z") and durations.

/** Parses a gateway timestamp; null for empty or invalid values. */
export function parseTime(value: string | null | undefined): Date | null {
  if (!value) return null;
  const date = new Date(value.includes("T") ? value : value.replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Milliseconds since the epoch for ordering (0 when empty): robust to either date format. */
export function timeValue(value: string | null | undefined): number {
  return parseTime(value)?.getTime() ?? 0;
}

/** "2026-01-01 10:00:00" in the browser's time zone, or "—". */
export function formatTime(value: string | null | undefined): string {
  const date = parseTime(value);
  if (!date) return "—";
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** "3 s ago", "5 min ago", … relative to `now`. */
export function formatAgo(value: string | null | undefined, now: number = Date.now()): string {
  const date = parseTime(value);
  if (!date) return "never";
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Seconds with sensible precision: "0.012 s", "1.50 s", "125 s". */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 0.1) return `${seconds.toFixed(3)} s`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  return `${Math.round(seconds)} s`;
}

/** A QPU-seconds balance, e.g. "1,000.0s". */
export function formatBalance(seconds: number): string {
  return `${seconds.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 })}s`;
}

/** A count, e.g. "2,500", or "10,000+" when it is a lower bound (a capped total). */
export function formatCount(count: number, capped = false): string {
  return `${count.toLocaleString("en-US")}${capped ? "+" : ""}`;
}

/** First eight characters of an id, for compact display. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
