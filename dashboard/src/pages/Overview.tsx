import { useEffect, useState } from "react";
import type { JobRecord } from "../api/types";
import { NotificationItem } from "../components/NotificationBell";
import { Card, EmptyState, StatusBadge } from "../components/widgets";
import { formatBalance, formatCount, formatTime, parseTime, shortId } from "../lib/format";
import { hrefOf } from "../lib/router";
import { reportError } from "../state/alerts";
import {
  bookerEmail,
  loadUpcomingSlots,
  qpuName,
  upcomingSlots,
  useQpus,
  useQueueCounts,
  useVisibleNotifications,
} from "../state/data";
import { useLiveJobPage } from "../state/jobs";
import { useSession } from "../state/session";
import { useStore } from "../state/store";

function Metric({ label, value, detail, href }: { label: string; value: string; detail?: string; href: string }) {
  return (
    <a className="metric" href={href}>
      <span className="metric-label">{label}</span>
      <span className="metric-value">{value}</span>
      {detail && <span className="metric-detail">{detail}</span>}
    </a>
  );
}

/** The earliest booking that has not ended; re-evaluated when that one ends. Bookings are not
 * on the live feed, so they are read again whenever the overview is shown. */
function useNextSlot() {
  const slots = useStore(upcomingSlots);
  useEffect(() => {
    loadUpcomingSlots().catch((error: unknown) => reportError(error, "Could not load bookings"));
  }, []);
  const [now, setNow] = useState(Date.now());
  const next = slots.find((s) => (parseTime(s.end_time)?.getTime() ?? 0) > now);
  useEffect(() => {
    if (!next) return;
    const end = parseTime(next.end_time)?.getTime() ?? 0;
    const start = parseTime(next.start_time)?.getTime() ?? 0;
    const boundary = start > now ? start : end; // "in progress" begins, or the slot ends
    const timer = window.setTimeout(() => setNow(Date.now()), Math.min(Math.max(boundary - now, 0) + 50, 2 ** 31 - 1));
    return () => window.clearTimeout(timer);
  }, [next, now]);
  return { next, now };
}

export function Overview({ admin }: { admin: boolean }) {
  const session = useSession();
  const qpus = useQpus();
  const queue = useQueueCounts();
  const notes = useVisibleNotifications();
  const { next, now } = useNextSlot();
  const recent = useLiveJobPage({ page: 1, perPage: 10, status: "" });
  const online = qpus.filter((q) => q.status === "online").length;
  const pending = formatCount(queue.pending, queue.pendingCapped);
  const queueDetail = `${pending} pending · ${formatCount(queue.running, queue.runningCapped)} running`;

  let nextText = "None Scheduled";
  let nextDetail = "";
  if (next) {
    const started = (parseTime(next.start_time)?.getTime() ?? 0) <= now;
    nextText = started ? "In progress" : formatTime(next.start_time);
    const who = bookerEmail(next) ?? (next.booked_by === session?.record.id ? "you" : "");
    nextDetail = `${started ? `until ${formatTime(next.end_time)}` : `to ${formatTime(next.end_time)}`}${who ? ` · ${who}` : ""}`;
  }

  return (
    <div className="page">
      <div className="metrics" aria-label="Metrics">
        <Metric label="Active QPUs" value={`${online}/${qpus.length}`} detail="online / total" href={hrefOf("qpus")} />
        <Metric
          label="Queue Status"
          value={formatCount(queue.pending + queue.running, queue.pendingCapped || queue.runningCapped)}
          detail={queueDetail}
          href={hrefOf("jobs")}
        />
        <Metric
          label="Time Credit"
          value={admin ? "Unlimited" : formatBalance(session?.record.qpu_seconds ?? 0)}
          detail="QPU seconds"
          href={hrefOf("settings")}
        />
        <Metric label="Next Booking" value={nextText} detail={nextDetail} href={hrefOf("bookings")} />
      </div>
      <div className="grid-2">
        <Card title="Recent Jobs" actions={<a href={hrefOf("jobs")}>Open console</a>}>
          <RecentJobs jobs={recent.page?.items ?? null} />
        </Card>
        <div className="stack">
          <Card title="Notifications">
            {notes.length === 0 ? (
              <EmptyState>No new notifications</EmptyState>
            ) : (
              <ul className="notes">
                {notes.map((n) => (
                  <NotificationItem key={n.id} note={n} />
                ))}
              </ul>
            )}
          </Card>
          <Card title="Quick Actions">
            <div className="actions start">
              <a className="button primary" href={hrefOf("jobs")}>
                Submit Job
              </a>
              <a className="button" href={hrefOf("bookings")}>
                Book Slot
              </a>
            </div>
          </Card>
        </div>
      </div>
    </div>
  );
}

function RecentJobs({ jobs }: { jobs: JobRecord[] | null }) {
  useQpus(); // re-render when QPU names arrive
  if (jobs === null) return <p className="muted">Loading…</p>;
  if (jobs.length === 0) return <EmptyState>No jobs yet. Submit one from the Jobs Console.</EmptyState>;
  return (
    <div className="table-wrap">
      <table className="table">
        <caption className="sr-only">The ten newest jobs</caption>
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">QPU</th>
            <th scope="col">Status</th>
            <th scope="col">Submitted</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id} data-job-id={job.id}>
              <td>
                <a href={hrefOf("jobs", job.id)} className="mono">
                  {shortId(job.id)}
                </a>
              </td>
              <td>{job.qpu_name || qpuName(job.qpu_target)}</td>
              <td>
                <StatusBadge status={job.status} />
              </td>
              <td>{formatTime(job.created)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
