import { useEffect, useRef, useState } from "react";
import { api, call } from "../api/client";
import type { NotificationRecord } from "../api/types";
import { formatTime } from "../lib/format";
import { reportError } from "../state/alerts";
import { markDismissed, useVisibleNotifications } from "../state/data";

/** Dismisses for the signed-in user only (persisted on the server). */
export async function dismissNotification(id: string): Promise<void> {
  await call(
    api.POST("/api/notifications/{notification_id}/dismiss", {
      params: { path: { notification_id: id } },
    }),
  );
  markDismissed(id);
}

export function isErrorTitle(title: string): boolean {
  return /fail|error/i.test(title);
}

export function NotificationItem({ note }: { note: NotificationRecord }) {
  const [busy, setBusy] = useState(false);
  const dismiss = async () => {
    setBusy(true);
    try {
      await dismissNotification(note.id);
    } catch (error) {
      reportError(error, "Could not dismiss the notification");
      setBusy(false);
    }
  };
  return (
    <li className={isErrorTitle(note.title) ? "note note-error" : "note"}>
      <div className="note-text">
        <strong>{note.title}</strong>
        {note.description && <p>{note.description}</p>}
        <small>{formatTime(note.start_time || note.created)}</small>
      </div>
      <button
        type="button"
        className="icon-button"
        aria-label={`Dismiss ${note.title}`}
        onClick={dismiss}
        disabled={busy}
      >
        ×
      </button>
    </li>
  );
}

export function NotificationBell() {
  const notes = useVisibleNotifications();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const close = (event: MouseEvent | KeyboardEvent) => {
      if (event instanceof KeyboardEvent ? event.key === "Escape" : !ref.current?.contains(event.target as Node)) {
        setOpen(false);
      }
    };
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", close);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", close);
    };
  }, [open]);

  const clearAll = async () => {
    const results = await Promise.allSettled(notes.map((n) => dismissNotification(n.id)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed && failed.status === "rejected") reportError(failed.reason, "Could not dismiss every notification");
  };

  return (
    <div className="bell" ref={ref}>
      <button
        type="button"
        className="icon-button"
        aria-label={`Notifications (${notes.length})`}
        aria-expanded={open}
        aria-controls="notification-panel"
        onClick={() => setOpen((o) => !o)}
      >
        <svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        {notes.length > 0 && (
          <span className="bell-count" data-testid="bell-count" aria-hidden="true">
            {notes.length}
          </span>
        )}
      </button>
      {open && (
        <div id="notification-panel" className="dropdown" role="region" aria-label="Notifications">
          <div className="dropdown-head">
            <strong>Notifications</strong>
            {notes.length > 0 && (
              <button type="button" className="link-button" onClick={clearAll}>
                Clear All
              </button>
            )}
          </div>
          {notes.length === 0 ? (
            <p className="empty">No new notifications</p>
          ) : (
            <ul className="notes">
              {notes.map((n) => (
                <NotificationItem key={n.id} note={n} />
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
