// Hash routing: "#jobs", "#jobs/<job id>"; unknown pages fall back to the overview.
import { useSyncExternalStore } from "react";

export const PAGES = [
  "overview",
  "qpus",
  "drivers",
  "monitoring",
  "jobs",
  "bookings",
  "settings",
  "admin",
] as const;
export type Page = (typeof PAGES)[number];

export const ADMIN_ONLY: ReadonlySet<Page> = new Set(["drivers", "monitoring", "admin"]);

export const TITLES: Record<Page, string> = {
  overview: "Overview",
  qpus: "QPU Registry",
  drivers: "Drivers",
  monitoring: "Monitoring",
  jobs: "Jobs Console",
  bookings: "Bookings",
  settings: "Profile Settings",
  admin: "Admin Panel",
};

export interface Route {
  page: Page;
  /** Text after "<page>/", e.g. a job id. */
  detail: string;
  /** Whether the hash named a known page. */
  known: boolean;
}

export function parseHash(hash: string): Route {
  const [head = "", ...rest] = hash.replace(/^#\/?/, "").split("/");
  const page = PAGES.find((p) => p === head);
  return page
    ? { page, detail: decodeURIComponent(rest.join("/")), known: true }
    : { page: "overview", detail: "", known: head === "" };
}

export function hrefOf(page: Page, detail = ""): string {
  return detail ? `#${page}/${encodeURIComponent(detail)}` : `#${page}`;
}

function subscribe(listener: () => void): () => void {
  window.addEventListener("hashchange", listener);
  return () => window.removeEventListener("hashchange", listener);
}

const snapshot = () => window.location.hash;

/** The current route; re-renders on hash changes (links, back/forward). */
export function useRoute(): Route {
  return parseHash(useSyncExternalStore(subscribe, snapshot, snapshot));
}

export function navigate(page: Page, detail = ""): void {
  window.location.hash = hrefOf(page, detail);
}

/** Rewrites an unknown hash to "#overview" without adding a history entry. */
export function normaliseUnknownHash(): void {
  if (!parseHash(window.location.hash).known) {
    history.replaceState(history.state, "", `${window.location.pathname}${window.location.search}#overview`);
  }
}
