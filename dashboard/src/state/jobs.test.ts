import { describe, expect, it, vi } from "vitest";
import type { Job, JobRecord, Page } from "../api/types";

vi.mock("../api/client", () => ({ api: {}, call: vi.fn() }));
vi.mock("../lib/realtime", () => ({ listen: vi.fn() }));
vi.mock("./data", () => ({ JOBS: "quantum_jobs" }));

const { applyJobEvent, pagerOf } = await import("./jobs");

/** The server's count cap for filters one index answers (see the API's `totalItems`). */
const COUNT_CAP = 10_000;

function job(id: string, status: Job["status"], created: string): JobRecord {
  return {
    collectionId: "quantum_jobs",
    collectionName: "quantum_jobs",
    id,
    status,
    created,
    updated: created,
    user_id: "u",
    user_email: "u@example.com",
    qpu_target: "q",
    qpu_name: "sim",
    payload: { circuits: [{ circuit: "OPENQASM 2.0;" }], shots: 10, meas_level: 2, meas_return: "single" },
    finished_at: "",
    duration: 0,
    results: null,
    attempt: 0,
    started_at: "",
  };
}

function page(items: JobRecord[], totalItems = items.length, totalItemsCapped = false): Page<JobRecord> {
  return { page: 1, perPage: 3, totalItems, totalItemsCapped, totalPages: Math.ceil(totalItems / 3), items };
}

const query = { page: 1, perPage: 3, status: "" };

describe("applyJobEvent", () => {
  it("updates a listed job in place and keeps fields events lack", () => {
    const before = page([job("b", "running", "2026-01-01 00:00:02.000Z"), job("a", "pending", "2026-01-01 00:00:01.000Z")]);
    // Pushed events are /api/jobs objects: no display names.
    const { qpu_name: _dropped, ...event } = job("a", "completed", "2026-01-01 00:00:01.000Z");
    const after = applyJobEvent(before, event as Job, query);
    expect(after.items.map((j) => [j.id, j.status])).toEqual([
      ["b", "running"],
      ["a", "completed"],
    ]);
    expect(after.items[1]?.qpu_name).toBe("sim");
  });

  it("puts a new job first on page 1 and trims the page", () => {
    const before = page(
      [job("c", "pending", "2026-01-01 00:00:03.000Z"), job("b", "pending", "2026-01-01 00:00:02.000Z"), job("a", "pending", "2026-01-01 00:00:01.000Z")],
      7,
    );
    const after = applyJobEvent(before, job("d", "pending", "2026-01-01 00:00:04.000Z"), query);
    expect(after.items.map((j) => j.id)).toEqual(["d", "c", "b"]);
    expect(after.totalItems).toBe(8);
    expect(after.totalPages).toBe(3);
  });

  it("leaves other pages, filtered-out and older unknown jobs alone", () => {
    const before = page([job("b", "pending", "2026-01-01 00:00:02.000Z")]);
    const fresh = job("z", "pending", "2026-01-01 00:00:09.000Z");
    expect(applyJobEvent(before, fresh, { ...query, page: 2 })).toBe(before);
    expect(applyJobEvent(before, fresh, { ...query, status: "completed" })).toBe(before);
    expect(applyJobEvent(before, job("old", "completed", "2025-12-31 00:00:00.000Z"), query)).toBe(before);
  });
});

describe("pagerOf", () => {
  const three = [job("c", "pending", "2026-01-01 00:00:03.000Z"), job("b", "pending", "2026-01-01 00:00:02.000Z"), job("a", "pending", "2026-01-01 00:00:01.000Z")];

  it("shows exact totals and stops at the last page", () => {
    expect(pagerOf(page(three, 7), 1, 3)).toEqual({ total: "7 jobs", pages: "3", hasNext: true });
    expect(pagerOf(page(three.slice(0, 1), 7), 3, 3)).toEqual({ total: "7 jobs", pages: "3", hasNext: false });
    expect(pagerOf(null, 1, 3)).toEqual({ total: "0 jobs", pages: "1", hasNext: false });
  });

  it("says when the count stopped at the cap and pages on while pages are full", () => {
    const lastCounted = Math.ceil(COUNT_CAP / 3);
    expect(pagerOf(page(three, COUNT_CAP, true), lastCounted, 3)).toEqual({
      total: "10,000+ jobs",
      pages: `${lastCounted}+`,
      hasNext: true,
    });
    // Past the counted pages the server still serves; a short page is the last.
    expect(pagerOf(page(three, COUNT_CAP, true), lastCounted + 5, 3).pages).toBe(`${lastCounted + 5}+`);
    expect(pagerOf(page(three.slice(0, 2), COUNT_CAP, true), lastCounted + 6, 3).hasNext).toBe(false);
  });

  it("shows a total as capped only when the server says so, whatever the cap", () => {
    // Exactly 10,000 matches: counted exactly, so the last page is known.
    expect(pagerOf(page(three.slice(0, 1), COUNT_CAP), 3334, 3)).toEqual({
      total: "10,000 jobs",
      pages: "3334",
      hasNext: false,
    });
    // A count that read rows stops at 2,000: a lower bound, and no last page is claimed.
    expect(pagerOf(page(three, 2_000, true), 667, 3)).toEqual({ total: "2,000+ jobs", pages: "667+", hasNext: true });
  });

  it("does not count a new job past the cap", () => {
    const capped = page(three, COUNT_CAP, true);
    const after = applyJobEvent(capped, job("d", "pending", "2026-01-01 00:00:04.000Z"), query);
    expect(after.totalItems).toBe(COUNT_CAP);
    expect(pagerOf(after, 1, 3).total).toBe("10,000+ jobs");
  });
});
