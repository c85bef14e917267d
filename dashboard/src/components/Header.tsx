import { useEffect, useRef, useState } from "react";
import { useFeedStatus } from "../lib/realtime";
import { hrefOf } from "../lib/router";
import { toggleTheme, useMode } from "../lib/theme";
import { signOut, useSession } from "../state/session";
import { NotificationBell } from "./NotificationBell";

const FEED_TEXT = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" };

export function Header({ title, menuOpen, onMenu }: { title: string; menuOpen: boolean; onMenu: () => void }) {
  const session = useSession();
  const mode = useMode();
  const feed = useFeedStatus();
  const [userMenu, setUserMenu] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!userMenu) return;
    const close = (event: MouseEvent | KeyboardEvent) => {
      if (event instanceof KeyboardEvent ? event.key === "Escape" : !menuRef.current?.contains(event.target as Node)) {
        setUserMenu(false);
      }
    };
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", close);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", close);
    };
  }, [userMenu]);

  return (
    <header className="header">
      <button
        type="button"
        className="icon-button menu-button"
        aria-label="Menu"
        aria-expanded={menuOpen}
        aria-controls="sidebar"
        onClick={onMenu}
      >
        ☰
      </button>
      <h1 className="page-title">{title}</h1>
      <span className={`feed feed-${feed}`} role="status" data-testid="feed-status">
        <span className="feed-dot" aria-hidden="true" />
        {FEED_TEXT[feed]}
      </span>
      <NotificationBell />
      <button
        type="button"
        className="icon-button"
        aria-label={mode === "dark" ? "Switch to light mode" : "Switch to dark mode"}
        onClick={toggleTheme}
      >
        <span aria-hidden="true">{mode === "dark" ? "☀" : "☾"}</span>
      </button>
      <div className="user-menu" ref={menuRef}>
        <button
          type="button"
          className="button user-button"
          aria-haspopup="menu"
          aria-expanded={userMenu}
          onClick={() => setUserMenu((o) => !o)}
        >
          <span className="user-email">{session?.record.email}</span>
        </button>
        {userMenu && (
          <div className="dropdown" role="menu" aria-label="Account">
            <a role="menuitem" href={hrefOf("settings")} className="menu-item" onClick={() => setUserMenu(false)}>
              Profile Settings
            </a>
            <button role="menuitem" type="button" className="menu-item" onClick={signOut}>
              Sign Out
            </button>
          </div>
        )}
      </div>
    </header>
  );
}
