import { useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import type { DriverCreated, Qpu } from "../api/types";
import { ConfirmDialog, Modal } from "../components/Modal";
import { Registered } from "../components/Registered";
import { EmptyState, StatusBadge, Switch } from "../components/widgets";
import { reportError } from "../state/alerts";
import { qpusLoaded, useQpus } from "../state/data";
import { deleteQpu, EXECUTOR_KINDS, registerQpu, toggleQpu } from "../state/registry";
import { useStore } from "../state/store";

export function Qpus({ admin }: { admin: boolean }) {
  const qpus = useQpus();
  const loaded = useStore(qpusLoaded);
  const [registering, setRegistering] = useState(false);
  const [deleting, setDeleting] = useState<Qpu | null>(null);
  const [busy, setBusy] = useState(false);

  const confirmDelete = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await deleteQpu(deleting.id);
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
        <p className="muted">Quantum processors registered with this server; status changes arrive live.</p>
        {admin && (
          <button type="button" className="button primary" onClick={() => setRegistering(true)}>
            Register QPU
          </button>
        )}
      </div>
      {loaded && qpus.length === 0 ? (
        <EmptyState>No QPUs registered yet.{admin ? " Register one to get a driver token." : ""}</EmptyState>
      ) : (
        <ul className="cards" aria-label="QPUs">
          {qpus.map((qpu) => (
            <QpuCard key={qpu.id} qpu={qpu} admin={admin} onDelete={() => setDeleting(qpu)} />
          ))}
        </ul>
      )}
      {registering && <RegisterQpu onClose={() => setRegistering(false)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete QPU"
          message={`Delete ${deleting.name} with its drivers, bookings and jobs? This cannot be undone.`}
          confirmLabel="Delete"
          busy={busy}
          onConfirm={confirmDelete}
          onCancel={() => setDeleting(null)}
        />
      )}
    </div>
  );
}

function QpuCard({ qpu, admin, onDelete }: { qpu: Qpu; admin: boolean; onDelete: () => void }) {
  const [busy, setBusy] = useState(false);
  const toggle = async (enabled: boolean) => {
    setBusy(true);
    try {
      await toggleQpu(qpu.id, enabled);
    } catch (error) {
      reportError(error, `Could not change ${qpu.name}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="card qpu-card" data-qpu={qpu.name} aria-label={`QPU ${qpu.name}`}>
      <div className="card-head">
        <h2>{qpu.name}</h2>
        <StatusBadge status={qpu.status} />
      </div>
      <dl className="facts">
        <dt>Executor</dt>
        <dd>{qpu.executor || "unknown (no driver has connected)"}</dd>
        <dt>Qubits</dt>
        <dd>{qpu.num_qubits || "unknown"}</dd>
        <dt>Native gates</dt>
        <dd>{qpu.native_gates.length ? qpu.native_gates.join(", ") : "unknown"}</dd>
        <dt>Queue</dt>
        <dd>{qpu.queue_length} job(s)</dd>
        <dt>Scheduling</dt>
        <dd>{qpu.enabled ? "Enabled" : "Disabled by an administrator"}</dd>
      </dl>
      {admin && (
        <div className="card-foot">
          <Switch
            checked={qpu.enabled}
            label={qpu.enabled ? "Enabled" : "Disabled"}
            onChange={toggle}
            disabled={busy}
          />
          <button type="button" className="button danger small" onClick={onDelete} aria-label={`Delete ${qpu.name}`}>
            Delete
          </button>
        </div>
      )}
    </li>
  );
}

function RegisterQpu({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [qubits, setQubits] = useState("");
  const [kind, setKind] = useState<string>("mock");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<DriverCreated | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      setCreated(await registerQpu(name.trim(), qubits ? Number(qubits) : null, kind));
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={created ? `QPU ${name.trim()} registered` : "Register QPU"} onClose={onClose} wide={Boolean(created)}>
      {created ? (
        <Registered driver={created} onDone={onClose} />
      ) : (
        <form className="form" onSubmit={submit}>
          <label>
            Name
            <input required maxLength={255} value={name} onChange={(e) => setName(e.target.value)} autoFocus />
          </label>
          <label>
            Qubits (optional; the driver reports them)
            <input type="number" min="1" step="1" value={qubits} onChange={(e) => setQubits(e.target.value)} />
          </label>
          <label>
            Driver executor
            <select value={kind} onChange={(e) => setKind(e.target.value)}>
              {EXECUTOR_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          </label>
          {error && (
            <p role="alert" className="error-text">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" className="button primary" disabled={busy}>
              Register
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
