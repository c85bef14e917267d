import type { DriverCreated } from "../api/types";
import { CodeBlock } from "./widgets";

const SNIPPET_LABELS: Record<string, string> = {
  manual_cli: "Install and start (command line)",
  systemd: "Install as a systemd service",
  install: "Install and start",
  stub: "Executor stub (my_module.py)",
};

/** The one-time view of a new driver's credentials and setup commands. */
export function Registered({ driver, onDone }: { driver: DriverCreated; onDone: () => void }) {
  const snippets = Object.entries(driver.snippets).filter(([, text]) => text.trim());
  return (
    <div className="registered">
      <p className="warning" role="note">
        Copy the access token now: it is shown only once and cannot be retrieved later.
      </p>
      <CodeBlock label="Access token" text={driver.token} />
      <CodeBlock label="CA fingerprint (SHA-256)" text={driver.ca_fingerprint} />
      {snippets.map(([key, text]) => (
        <CodeBlock key={key} label={SNIPPET_LABELS[key] ?? key} text={text} />
      ))}
      <div className="actions">
        <button type="button" className="button primary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
