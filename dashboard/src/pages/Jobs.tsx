import { useEffect, useMemo, useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import type { JobRecord } from "../api/types";
import { TERMINAL } from "../api/types";
import { EmptyState, StatusBadge } from "../components/widgets";
import { formatSeconds, formatTime, shortId } from "../lib/format";
import { hrefOf, navigate } from "../lib/router";
import { reportError } from "../state/alerts";
import { session } from "../state/session";
import { qpuName, useQpus } from "../state/data";
import { cancelJob, pagerOf, submitJob, useLiveJob, useLiveJobPage } from "../state/jobs";
import { Histogram, IqScatter } from "../jobs/charts";
import { QasmEditor } from "../jobs/Editor";
import { DEFAULT_SOURCE, EXAMPLES } from "../jobs/qasm";
import { readResults } from "../jobs/results";

const PER_PAGE = 25;

/** Owner e-mail; pushed events carry only the id, which for one's own jobs we can name. */
function ownerOf(job: JobRecord): string {
  const me = session.get()?.record;
  return job.user_email || (me && job.user_id === me.id ? me.email : job.user_id);
}
const STATUSES = ["", "pending", "running", "completed", "failed", "cancelled"];

export default function Jobs({ selected, admin }: { selected: string; admin: boolean }) {
  return (
    <div className="page jobs-layout">
      <div className="stack">
        <SubmitPanel />
        <JobList selected={selected} admin={admin} />
      </div>
      <JobDetails id={selected} admin={admin} />
    </div>
  );
}

function SubmitPanel() {
  const online = useQpus().filter((q) => q.status === "online" && q.enabled);
  const [qpu, setQpu] = useState("");
  const [source, setSource] = useState(DEFAULT_SOURCE);
  const [example, setExample] = useState(EXAMPLES[0]?.id ?? "");
  const [shots, setShots] = useState("1000");
  const [measLevel, setMeasLevel] = useState("2");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  // Keep a valid choice: the first online QPU until the user picks another online one.
  const chosen = online.some((q) => q.id === qpu) ? qpu : (online[0]?.id ?? "");

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const count = Number(shots);
    if (!Number.isInteger(count) || count < 1) {
      setError("Shots must be a whole number of at least 1.");
      return;
    }
    setBusy(true);
    setError("");
    try {
      const job = await submitJob({ circuit: source, shots: count, measLevel: Number(measLevel), qpu: chosen });
      navigate("jobs", job.id);
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="submit-title">
      <div className="card-head">
        <h2 id="submit-title">Submit a Job</h2>
      </div>
      <form className="form" onSubmit={submit}>
        <div className="form-row">
          <label>
            QPU
            <select value={chosen} onChange={(e) => setQpu(e.target.value)} disabled={online.length === 0}>
              {online.length === 0 && <option value="">No online QPUs available</option>}
              {online.map((q) => (
                <option key={q.id} value={q.id}>
                  {q.name}
                  {q.num_qubits ? ` (${q.num_qubits} qubits)` : ""}
                </option>
              ))}
            </select>
          </label>
          <label>
            Example
            <select value={example} onChange={(e) => setExample(e.target.value)}>
              {EXAMPLES.map((ex) => (
                <option key={ex.id} value={ex.id}>
                  {ex.label}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            className="button align-end"
            onClick={() => setSource(EXAMPLES.find((ex) => ex.id === example)?.source ?? DEFAULT_SOURCE)}
          >
            Load Example
          </button>
        </div>
        <div className="field">
          <span className="field-label" id="qasm-label">
            OpenQASM 2 or 3 circuit
          </span>
          <QasmEditor value={source} onChange={setSource} label="OpenQASM circuit" />
        </div>
        <div className="form-row">
          <label>
            Shots
            <input type="number" min="1" step="1" required value={shots} onChange={(e) => setShots(e.target.value)} />
          </label>
          <label>
            Measurement level
            <select value={measLevel} onChange={(e) => setMeasLevel(e.target.value)}>
              <option value="2">2 (Counts)</option>
              <option value="1">1 (IQ points)</option>
            </select>
          </label>
          <button type="submit" className="button primary align-end" disabled={!chosen || busy}>
            {busy ? "Submitting…" : "Execute Job"}
          </button>
        </div>
        {error && (
          <p role="alert" className="error-text">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}

function JobList({ selected, admin }: { selected: string; admin: boolean }) {
  const [number, setNumber] = useState(1);
  const [status, setStatus] = useState("");
  const { page, error } = useLiveJobPage({ page: number, perPage: PER_PAGE, status });
  useQpus();
  const pager = pagerOf(page, number, PER_PAGE);

  return (
    <section className="card" aria-labelledby="jobs-title">
      <div className="card-head">
        <h2 id="jobs-title">{admin ? "All Jobs" : "My Jobs"}</h2>
        <label className="inline">
          Status
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setNumber(1);
            }}
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "any"}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error !== null && <p className="error-text">Could not load jobs: {error instanceof ApiError ? error.detail : String(error)}</p>}
      {page === null ? (
        <p className="muted">Loading…</p>
      ) : page.items.length === 0 ? (
        <EmptyState>{status ? `No ${status} jobs.` : "No jobs yet. Submit one above."}</EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="job-list">
            <caption className="sr-only">Jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">QPU</th>
                <th scope="col">Status</th>
                {admin && <th scope="col">Owner</th>}
                <th scope="col">Submitted</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((job) => (
                <tr key={job.id} data-job-id={job.id} className={job.id === selected ? "selected" : undefined}>
                  <td>
                    <a href={hrefOf("jobs", job.id)} className="mono" aria-current={job.id === selected ? "true" : undefined}>
                      {shortId(job.id)}
                    </a>
                  </td>
                  <td>{job.qpu_name || qpuName(job.qpu_target)}</td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  {admin && <td>{ownerOf(job)}</td>}
                  <td>{formatTime(job.created)}</td>
                  <td>{job.duration ? formatSeconds(job.duration) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Job pages">
        <button type="button" className="button small" disabled={number <= 1} onClick={() => setNumber((n) => n - 1)}>
          Previous
        </button>
        <span>
          Page {number} of {pager.pages} · {pager.total}
        </span>
        <button type="button" className="button small" disabled={!pager.hasNext} onClick={() => setNumber((n) => n + 1)}>
          Next
        </button>
      </nav>
    </section>
  );
}

type Tab = "counts" | "iq" | "raw";

function JobDetails({ id, admin }: { id: string; admin: boolean }) {
  const { job, error } = useLiveJob(id);
  if (!id) {
    return (
      <section className="card results" aria-label="Job results">
        <EmptyState>Select a job to see its status and results.</EmptyState>
      </section>
    );
  }
  if (error) {
    return (
      <section className="card results" aria-label="Job results">
        <p className="error-text">Could not load job {shortId(id)}: {error instanceof ApiError ? error.detail : String(error)}</p>
      </section>
    );
  }
  if (!job) {
    return (
      <section className="card results" aria-label="Job results">
        <p className="muted">Loading…</p>
      </section>
    );
  }
  return <JobView job={job} admin={admin} />;
}

function JobView({ job, admin }: { job: JobRecord; admin: boolean }) {
  useQpus();
  const view = useMemo(() => readResults(job.results), [job.results]);
  const [circuit, setCircuit] = useState(0);
  const current = view.circuits[circuit] ?? view.circuits[0];
  const hasIq = Boolean(current?.iq);
  const [tab, setTab] = useState<Tab>("counts");
  const [cancelling, setCancelling] = useState(false);
  const active = !TERMINAL.has(job.status);

  useEffect(() => {
    setCircuit(0);
    setTab("counts");
  }, [job.id]);
  useEffect(() => {
    if (hasIq && tab === "counts" && !current?.counts) setTab("iq");
  }, [hasIq, tab, current]);

  const cancel = async () => {
    setCancelling(true);
    try {
      await cancelJob(job.id);
    } catch (e) {
      reportError(e, "Could not cancel the job");
    } finally {
      setCancelling(false);
    }
  };

  const tabs: { id: Tab; label: string; show: boolean }[] = [
    { id: "counts", label: "Counts", show: true },
    { id: "iq", label: "IQ Scatter", show: hasIq },
    { id: "raw", label: "Raw JSON", show: true },
  ];

  return (
    <section className="card results" aria-labelledby="job-title" data-testid="job-details" data-status={job.status}>
      <div className="card-head">
        <h2 id="job-title">
          Job <span className="mono">{shortId(job.id)}</span>
        </h2>
        <StatusBadge status={job.status} />
      </div>
      <p>
        Executed on <strong>{job.qpu_name || qpuName(job.qpu_target)}</strong>
      </p>
      <dl className="facts">
        <dt>Job id</dt>
        <dd className="mono">{job.id}</dd>
        {admin && (
          <>
            <dt>Owner</dt>
            <dd>{ownerOf(job)}</dd>
          </>
        )}
        <dt>Duration</dt>
        <dd data-testid="job-duration">{job.duration ? formatSeconds(job.duration) : "—"}</dd>
        <dt>Submitted</dt>
        <dd>{formatTime(job.created)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(job.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(job.finished_at)}</dd>
        <dt>Attempts</dt>
        <dd>{job.attempt ?? "—"}</dd>
        <dt>Shots · level</dt>
        <dd>
          {String(job.payload.shots ?? "—")} · meas level {String(job.payload.meas_level ?? 2)}
        </dd>
      </dl>
      {active && (
        <div className="actions start">
          <button type="button" className="button danger" onClick={cancel} disabled={cancelling}>
            Cancel Job
          </button>
          <span className="muted">Results appear here the moment the job finishes.</span>
        </div>
      )}
      {view.error && (
        <div className="job-error" role="note">
          <strong>Error</strong>
          <pre>{view.error}</pre>
        </div>
      )}
      {view.circuits.length > 1 && (
        <label className="inline">
          Circuit
          <select value={circuit} onChange={(e) => setCircuit(Number(e.target.value))}>
            {view.circuits.map((c) => (
              <option key={c.index} value={c.index}>
                #{c.index + 1}
              </option>
            ))}
          </select>
        </label>
      )}
      <div role="tablist" aria-label="Result views" className="tabs">
        {tabs
          .filter((t) => t.show)
          .map((t) => (
            <button
              key={t.id}
              id={`result-tab-${t.id}`}
              type="button"
              role="tab"
              aria-selected={tab === t.id}
              aria-controls="result-panel"
              className={tab === t.id ? "tab active" : "tab"}
              onClick={() => setTab(t.id)}
            >
              {t.label}
            </button>
          ))}
      </div>
      <div id="result-panel" role="tabpanel" aria-labelledby={`result-tab-${tab}`} tabIndex={0}>
        {tab === "counts" &&
          (current?.counts ? (
            <Histogram counts={current.counts} shots={current.shots} />
          ) : (
            <EmptyState>{active ? "Waiting for the result…" : "This result has no counts."}</EmptyState>
          ))}
        {tab === "iq" && current?.iq && <IqScatter series={current.iq} />}
        {tab === "raw" && <pre className="raw-json">{JSON.stringify(job.results ?? null, null, 2)}</pre>}
      </div>
    </section>
  );
}
