import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import { listDrivers } from "../api/collections";
import type { DriverCreated, DriverRecord } from "../api/types";
import { ConfirmDialog, Modal } from "../components/Modal";
import { Registered } from "../components/Registered";
import { EmptyState, StatusBadge, Switch } from "../components/widgets";
import { formatAgo } from "../lib/format";
import { listen } from "../lib/realtime";
import { reportError } from "../state/alerts";
import { qpuName, useQpus } from "../state/data";
import { CUSTOM_EVENTS, deleteDriver, DRIVER_KINDS, LANGUAGES, registerDriver, toggleDriver } from "../state/registry";

/** Drivers, re-read whenever the feed reports a QPU change (a driver came or went). */
function useDrivers() {
  const [drivers, setDrivers] = useState<DriverRecord[] | null>(null);
  const load = useCallback(async () => {
    try {
      const page = await listDrivers({ perPage: 500, sort: "created" });
      setDrivers(page.items);
    } catch (error) {
      reportError(error, "Could not load drivers");
    }
  }, []);
  useEffect(() => {
    void load();
    let timer: number | undefined;
    const soon = () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => void load(), 100);
    };
    const stop = listen({ onSync: soon, onQpu: soon });
    return () => {
      window.clearTimeout(timer);
      stop();
    };
  }, [load]);
  return { drivers, setDrivers, load };
}

function useTick(ms: number) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(id);
  }, [ms]);
  return now;
}

export function Drivers() {
  const { drivers, setDrivers, load } = useDrivers();
  useQpus(); // QPU names
  const now = useTick(10_000);
  const [registering, setRegistering] = useState(false);
  const [deleting, setDeleting] = useState<DriverRecord | null>(null);
  const [busy, setBusy] = useState(false);

  const toggle = async (driver: DriverRecord, enabled: boolean) => {
    try {
      const changed = await toggleDriver(driver.id, enabled);
      // Only the switch: the connection status comes from the re-read the feed triggers.
      setDrivers((prev) => prev?.map((d) => (d.id === changed.id ? { ...d, enabled: changed.enabled } : d)) ?? prev);
    } catch (error) {
      reportError(error, `Could not change ${driver.name}`);
    }
  };

  const confirmDelete = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await deleteDriver(deleting.id);
      setDrivers((prev) => prev?.filter((d) => d.id !== deleting.id) ?? prev);
      setDeleting(null);
    } catch (error) {
      reportError(error, `Could not delete ${deleting.name}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <div className="page-actions">
        <p className="muted">Driver daemons attached to QPUs; connection changes arrive live.</p>
        <button type="button" className="button primary" onClick={() => setRegistering(true)}>
          Register Driver
        </button>
      </div>
      {drivers === null ? (
        <p className="muted">Loading…</p>
      ) : drivers.length === 0 ? (
        <EmptyState>No drivers registered yet.</EmptyState>
      ) : (
        <ul className="cards" aria-label="Drivers">
          {drivers.map((d) => (
            <li key={d.id} className="card" data-driver={d.name} aria-label={`Driver ${d.name}`}>
              <div className="card-head">
                <h2>{d.name}</h2>
                <StatusBadge status={d.status} />
              </div>
              <dl className="facts">
                <dt>QPU</dt>
                <dd>{qpuName(d.qpu)}</dd>
                <dt>Kind</dt>
                <dd>
                  {d.kind} · {d.language}
                </dd>
                <dt>Last seen</dt>
                <dd>{formatAgo(d.last_seen, now)}</dd>
                <dt>Host</dt>
                <dd>{d.host || "—"}</dd>
                <dt>Version</dt>
                <dd>{d.version ? `${d.version}${d.transport ? ` (${d.transport})` : ""}` : "—"}</dd>
              </dl>
              <div className="card-foot">
                <Switch
                  checked={d.enabled}
                  label={d.enabled ? "Enabled" : "Disabled"}
                  onChange={(next) => void toggle(d, next)}
                />
                <button type="button" className="button danger small" onClick={() => setDeleting(d)} aria-label={`Delete ${d.name}`}>
                  Delete
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      {registering && (
        <RegisterDriver
          onClose={() => {
            setRegistering(false);
            void load();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete driver"
          message={`Delete ${deleting.name}? Its token stops working at once.`}
          confirmLabel="Delete"
          busy={busy}
          onConfirm={confirmDelete}
          onCancel={() => setDeleting(null)}
        />
      )}
    </div>
  );
}

function RegisterDriver({ onClose }: { onClose: () => void }) {
  const qpus = useQpus();
  const [name, setName] = useState("");
  const [picked, setQpu] = useState("");
  const qpu = qpus.some((q) => q.id === picked) ? picked : (qpus[0]?.id ?? "");
  const [kind, setKind] = useState<string>("mock");
  const [language, setLanguage] = useState<string>("python");
  const [events, setEvents] = useState<string[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<DriverCreated | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (kind === "custom" && events.length === 0) {
      setError("Choose at least one event type for a custom driver.");
      return;
    }
    setBusy(true);
    setError("");
    try {
      setCreated(
        await registerDriver({
          name: name.trim(),
          qpu,
          kind,
          language,
          ...(kind === "custom" ? { events } : {}),
        }),
      );
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={created ? `Driver ${created.name} registered` : "Register Driver"} onClose={onClose} wide={Boolean(created)}>
      {created ? (
        <Registered driver={created} onDone={onClose} />
      ) : (
        <form className="form" onSubmit={submit}>
          <label>
            Name
            <input required maxLength={255} value={name} onChange={(e) => setName(e.target.value)} autoFocus />
          </label>
          <label>
            QPU
            <select required value={qpu} onChange={(e) => setQpu(e.target.value)}>
              {qpus.length === 0 && <option value="">No QPUs registered</option>}
              {qpus.map((q) => (
                <option key={q.id} value={q.id}>
                  {q.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind(e.target.value)}>
              {DRIVER_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k === "custom" ? "custom (Bring your own driver)" : k}
                </option>
              ))}
            </select>
          </label>
          <label>
            Language
            <select value={language} onChange={(e) => setLanguage(e.target.value)}>
              {LANGUAGES.map((l) => (
                <option key={l} value={l}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          {kind === "custom" && (
            <fieldset>
              <legend>Events the driver handles</legend>
              {CUSTOM_EVENTS.map((ev) => (
                <label key={ev} className="check">
                  <input
                    type="checkbox"
                    checked={events.includes(ev)}
                    onChange={(e) =>
                      setEvents((prev) => (e.target.checked ? [...prev, ev] : prev.filter((x) => x !== ev)))
                    }
                  />
                  {ev}
                </label>
              ))}
            </fieldset>
          )}
          {error && (
            <p role="alert" className="error-text">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" className="button primary" disabled={busy || !qpu}>
              Register
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
