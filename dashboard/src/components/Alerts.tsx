import { dismissAlert, useAlerts } from "../state/alerts";

/** Transient messages; errors are announced assertively, confirmations politely. */
export function Alerts() {
  const alerts = useAlerts();
  return (
    <div className="alerts">
      <div role="alert" aria-live="assertive">
        {alerts.filter((a) => a.kind === "error").map((a) => (
          <AlertItem key={a.id} id={a.id} kind={a.kind} text={a.text} />
        ))}
      </div>
      <div role="status" aria-live="polite">
        {alerts.filter((a) => a.kind === "success").map((a) => (
          <AlertItem key={a.id} id={a.id} kind={a.kind} text={a.text} />
        ))}
      </div>
    </div>
  );
}

function AlertItem({ id, kind, text }: { id: number; kind: string; text: string }) {
  return (
    <div className={`alert alert-${kind}`}>
      <span>{text}</span>
      <button type="button" className="icon-button" aria-label="Dismiss message" onClick={() => dismissAlert(id)}>
        ×
      </button>
    </div>
  );
}
