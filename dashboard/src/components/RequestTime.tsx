import { useState, type FormEvent } from "react";
import { createTimeRequest } from "../api/collections";
import { ApiError } from "../api/client";
import { pushAlert } from "../state/alerts";
import { Modal } from "./Modal";

/** Users ask administrators for more QPU time (a `qpu_time_requests` record). */
export function RequestTime({ onClose }: { onClose: () => void }) {
  const [seconds, setSeconds] = useState("100");
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = Number(seconds);
    if (!Number.isFinite(value) || value <= 0) {
      setError("Enter a positive number of seconds.");
      return;
    }
    setBusy(true);
    try {
      await createTimeRequest({ seconds: value, requested_reason: reason.trim() });
      pushAlert("success", "Time request submitted.");
      onClose();
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
      setBusy(false);
    }
  };

  return (
    <Modal title="Request QPU Time" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label>
          Seconds
          <input
            type="number"
            min="1"
            step="any"
            required
            value={seconds}
            onChange={(e) => setSeconds(e.target.value)}
          />
        </label>
        <label>
          Reason
          <textarea required value={reason} onChange={(e) => setReason(e.target.value)} rows={3} />
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
            Submit Time Request
          </button>
        </div>
      </form>
    </Modal>
  );
}
