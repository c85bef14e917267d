// Live job lists and job details: read once, then kept current by the feed's job events.
import { useCallback, useEffect, useState } from "react";
import { api, call } from "../api/client";
import { listJobs, quote, viewJob } from "../api/collections";
import type { Job, JobRecord, Page } from "../api/types";
import { formatCount, timeValue } from "../lib/format";
import { listen, loadWithEvents } from "../lib/realtime";

export interface JobPageQuery {
  page: number;
  perPage: number;
  /** Only jobs in this status ("" = all). */
  status: string;
}

export interface Pager {
  /** "12 jobs", or "10,000+ jobs" when the count stopped at the cap (`totalItemsCapped`). */
  total: string;
  /** "3", or "334+" when there are more pages than the capped count shows. */
  pages: string;
  hasNext: boolean;
}

/** What the pager shows for page `number` of `page` (null while loading). */
export function pagerOf(page: Page<unknown> | null, number: number, perPage: number): Pager {
  const total = page?.totalItems ?? 0;
  const pages = Math.max(1, page?.totalPages ?? 1);
  if (!page?.totalItemsCapped) {
    return { total: `${formatCount(total)} jobs`, pages: `${pages}`, hasNext: number < pages };
  }
  // Capped: more may follow while pages come back full (the server pages past the cap).
  const full = page.items.length >= perPage;
  return {
    total: `${formatCount(total, true)} jobs`,
    pages: `${Math.max(pages, number)}+`,
    hasNext: number < pages || full,
  };
}

/** Folds one job event into a page of the newest-first job list. */
export function applyJobEvent(page: Page<JobRecord>, job: Job, query: JobPageQuery): Page<JobRecord> {
  const index = page.items.findIndex((j) => j.id === job.id);
  if (index >= 0) {
    const items = page.items.slice();
    items[index] = { ...items[index], ...job } as JobRecord;
    return { ...page, items };
  }
  // A job we have not seen: new ones appear on the first page when they match the filter.
  const matches = !query.status || job.status === query.status;
  const newest = page.items[0];
  const isNew = !newest || timeValue(job.created) >= timeValue(newest.created);
  if (query.page !== 1 || !matches || !isNew) return page;
  const items = [job as JobRecord, ...page.items].slice(0, query.perPage);
  // A capped total stays the lower bound the server counted.
  const totalItems = page.totalItemsCapped ? page.totalItems : page.totalItems + 1;
  return { ...page, items, totalItems, totalPages: Math.max(1, Math.ceil(totalItems / query.perPage)) };
}

export function useLiveJobPage(query: JobPageQuery) {
  const [page, setPage] = useState<Page<JobRecord> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const { page: number, perPage, status } = query;

  const load = useCallback(async () => {
    try {
      const [read, missed] = await loadWithEvents(() =>
        listJobs({
          page: number,
          perPage,
          sort: "-created",
          filter: status ? `status=${quote(status)}` : "",
        }),
      );
      const query = { page: number, perPage, status };
      let next = read;
      for (const event of missed) if ("job" in event) next = applyJobEvent(next, event.job, query);
      setPage(next);
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [number, perPage, status]);

  useEffect(() => {
    void load();
    return listen({
      onSync: () => void load(),
      onJob: (job) => setPage((prev) => (prev ? applyJobEvent(prev, job, { page: number, perPage, status }) : prev)),
    });
  }, [load, number, perPage, status]);

  return { page, error, reload: load };
}

/** One job's record, with every later change merged in as it is pushed. */
export function useLiveJob(id: string) {
  const [job, setJob] = useState<JobRecord | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    setJob(null);
    setError(null);
    if (!id) return;
    let live = true;
    const load = () =>
      loadWithEvents(() => viewJob(id))
        .then(([read, missed]) => {
          let record = read;
          for (const event of missed) {
            if ("job" in event && event.job.id === id) record = { ...record, ...event.job } as JobRecord;
          }
          if (live) setJob((prev) => (prev && timeValue(prev.updated) > timeValue(record.updated) ? prev : record));
        })
        .catch((e: unknown) => live && setError(e));
    void load();
    const stop = listen({
      onSync: () => void load(),
      onJob: (event) => {
        if (event.id !== id) return;
        setJob((prev) => ({ ...(prev ?? {}), ...event }) as JobRecord);
        // Events carry no lease facts (attempt, start): read them once the job moves on.
        if (event.status !== "pending") void load();
      },
    });
    return () => {
      live = false;
      stop();
    };
  }, [id]);

  return { job, error, setJob };
}

export async function submitJob(body: {
  circuit: string;
  shots: number;
  measLevel: number;
  qpu: string;
}): Promise<Job> {
  return call(
    api.POST("/api/jobs", {
      body: {
        circuits: [{ circuit: body.circuit }],
        shots: body.shots,
        meas_level: body.measLevel,
        meas_return: "single",
        qpu_target: body.qpu,
      },
    }),
  );
}

export async function cancelJob(id: string): Promise<void> {
  await call(api.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: id } } }));
}
