import { useEffect, useState } from "react";
import { api, call } from "../api/client";
import { formatBalance } from "../lib/format";
import { ADMIN_ONLY, hrefOf, PAGES, TITLES, type Page } from "../lib/router";
import { useSession } from "../state/session";
import { RequestTime } from "./RequestTime";

const ICONS: Record<Page, string> = {
  overview: "◉",
  qpus: "⬡",
  drivers: "⚙",
  monitoring: "∿",
  jobs: "▶",
  bookings: "▦",
  settings: "☺",
  admin: "⚑",
};

/** Navigation for the caller's role, balance card and (administrators) server version. */
export function Sidebar({ page, open, onNavigate }: { page: Page; open: boolean; onNavigate: () => void }) {
  const session = useSession();
  const [version, setVersion] = useState("");
  const [requesting, setRequesting] = useState(false);
  const admin = session?.admin ?? false;

  useEffect(() => {
    if (!admin) return;
    let live = true;
    call(api.GET("/api/op/version", {}))
      .then((v) => live && setVersion(v.version))
      .catch(() => live && setVersion(""));
    return () => {
      live = false;
    };
  }, [admin]);

  if (!session) return null;
  const pages = PAGES.filter((p) => admin || !ADMIN_ONLY.has(p));

  return (
    <aside className={open ? "sidebar open" : "sidebar"} id="sidebar">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          Q
        </span>
        <div>
          <div className="brand-name">QPI Interface</div>
          <div className="brand-tagline">Control Hub</div>
        </div>
      </div>
      <nav aria-label="Main">
        <ul>
          {pages.map((p) => (
            <li key={p}>
              <a
                href={hrefOf(p)}
                className={p === page ? "nav-link active" : "nav-link"}
                aria-current={p === page ? "page" : undefined}
                onClick={onNavigate}
              >
                <span aria-hidden="true" className="nav-icon">
                  {ICONS[p]}
                </span>
                {TITLES[p]}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <section className="balance" aria-label="QPU balance">
        <div className="balance-role">{admin ? "Administrator" : "User Account"}</div>
        <div className="balance-value" data-testid="balance">
          {admin ? "Unlimited" : formatBalance(session.record.qpu_seconds)}
        </div>
        <div className="balance-label">QPU time</div>
        {!admin && (
          <button type="button" className="link-button" onClick={() => setRequesting(true)}>
            Request Time
          </button>
        )}
        {admin && version && <div className="version">Server {version}</div>}
      </section>
      {requesting && <RequestTime onClose={() => setRequesting(false)} />}
    </aside>
  );
}
