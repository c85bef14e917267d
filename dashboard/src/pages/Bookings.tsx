import { useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import { createTimeSlot, deleteTimeSlot } from "../api/collections";
import type { TimeSlotRecord } from "../api/types";
import { ConfirmDialog, Modal } from "../components/Modal";
import { Card, EmptyState } from "../components/widgets";
import { formatTime } from "../lib/format";
import { pushAlert, reportError } from "../state/alerts";
import { bookerEmail, loadUpcomingSlots, upcomingSlots } from "../state/data";
import { useSession } from "../state/session";
import { useStore } from "../state/store";

/** Upcoming bookings and booking a slot (the full page arrives with part 2 of the dashboard). */
export function Bookings() {
  const session = useSession();
  const slots = useStore(upcomingSlots);
  const [booking, setBooking] = useState(false);
  const [cancelling, setCancelling] = useState<TimeSlotRecord | null>(null);
  useEffect(() => {
    loadUpcomingSlots().catch((error: unknown) => reportError(error, "Could not load bookings"));
  }, []);

  const cancel = async () => {
    if (!cancelling) return;
    try {
      await deleteTimeSlot(cancelling.id);
      await loadUpcomingSlots();
      setCancelling(null);
    } catch (error) {
      reportError(error, "Could not cancel the booking");
    }
  };

  return (
    <div className="page">
      <Card title="Scheduling policy">
        <p>
          During a booked slot the booker's jobs run first. Other users' jobs still run whenever the booker
          has been idle for a few seconds. Slots can be cancelled until they start.
        </p>
      </Card>
      <Card
        title="Upcoming reservations"
        actions={
          <button type="button" className="button primary" onClick={() => setBooking(true)}>
            Book Time Slot
          </button>
        }
      >
        {slots.length === 0 ? (
          <EmptyState>No upcoming bookings.</EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Start</th>
                  <th scope="col">End</th>
                  <th scope="col">Booked by</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {slots.map((slot) => (
                  <tr key={slot.id}>
                    <td>{formatTime(slot.start_time)}</td>
                    <td>{formatTime(slot.end_time)}</td>
                    <td>{bookerEmail(slot) ?? slot.booked_by}</td>
                    <td>
                      {(session?.admin || slot.booked_by === session?.record.id) && (
                        <button type="button" className="button small danger" onClick={() => setCancelling(slot)}>
                          Cancel
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {booking && <BookSlot onClose={() => setBooking(false)} />}
      {cancelling && (
        <ConfirmDialog
          title="Cancel booking"
          message={`Cancel the booking from ${formatTime(cancelling.start_time)}?`}
          confirmLabel="Cancel booking"
          onConfirm={cancel}
          onCancel={() => setCancelling(null)}
        />
      )}
    </div>
  );
}

function BookSlot({ onClose }: { onClose: () => void }) {
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const from = new Date(start);
    const to = new Date(end);
    if (!(to > from)) {
      setError("End time must be after start time.");
      return;
    }
    setBusy(true);
    try {
      await createTimeSlot({ start_time: from.toISOString(), end_time: to.toISOString() });
      await loadUpcomingSlots();
      pushAlert("success", "Time slot booked.");
      onClose();
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
      setBusy(false);
    }
  };

  return (
    <Modal title="Book Time Slot" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label>
          Start
          <input type="datetime-local" required value={start} onChange={(e) => setStart(e.target.value)} />
        </label>
        <label>
          End
          <input type="datetime-local" required value={end} onChange={(e) => setEnd(e.target.value)} />
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
            Book
          </button>
        </div>
      </form>
    </Modal>
  );
}
