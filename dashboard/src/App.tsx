import { lazy, Suspense, useEffect, useState } from "react";
import { Header } from "./components/Header";
import { Login } from "./components/Login";
import { Sidebar } from "./components/Sidebar";
import { connectFeed, disconnectFeed } from "./lib/realtime";
import { ADMIN_ONLY, normaliseUnknownHash, TITLES, useRoute } from "./lib/router";
import { Alerts } from "./components/Alerts";
import { reportError } from "./state/alerts";
import { resetData, startLiveData } from "./state/data";
import { checkSession, refreshSessionIfOld, signInWithOAuth2Code, useSession } from "./state/session";
import { Overview } from "./pages/Overview";
import { Qpus } from "./pages/Qpus";
import { Drivers } from "./pages/Drivers";
import { Bookings } from "./pages/Bookings";
import { Settings } from "./pages/Settings";
import { Admin } from "./pages/Admin";
import { Monitoring } from "./pages/Monitoring";

// The console carries the code editor; load it only when opened.
const Jobs = lazy(() => import("./pages/Jobs"));

/** Reads and removes ?oauth2_code / ?oauth2_error left by the server's OAuth2 redirect. */
function takeOAuth2Result(): { code: string; error: string } {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("oauth2_code") ?? "";
  const error = params.get("oauth2_error") ?? "";
  if (code || error) {
    params.delete("oauth2_code");
    params.delete("oauth2_error");
    const query = params.toString();
    history.replaceState(history.state, "", `${window.location.pathname}${query ? `?${query}` : ""}${window.location.hash}`);
  }
  return { code, error };
}

const oauth2 = takeOAuth2Result();
// Started once at load: the one-time code must not be spent twice.
const exchange = oauth2.code ? signInWithOAuth2Code(oauth2.code) : null;

export function App() {
  const session = useSession();
  const route = useRoute();
  const [oauthError, setOauthError] = useState(oauth2.error);
  const [exchanging, setExchanging] = useState(Boolean(oauth2.code));
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    exchange
      ?.catch((e: unknown) => setOauthError(e instanceof Error ? e.message : String(e)))
      .finally(() => setExchanging(false));
  }, []);

  useEffect(normaliseUnknownHash, [route.known]);

  const token = session?.token ?? null;
  useEffect(() => {
    if (!token) {
      resetData();
      return;
    }
    const stop = startLiveData((error) => reportError(error));
    // If the stream closes for good, one authenticated call tells whether the session died.
    connectFeed(token, () => void checkSession().catch(() => undefined));
    refreshSessionIfOld().catch(() => undefined);
    return () => {
      stop();
      disconnectFeed();
    };
  }, [token]);

  const title = TITLES[route.page];
  useEffect(() => {
    document.title = `${title} · QPI Dashboard`;
  }, [title]);

  if (!session) {
    return (
      <div className="signed-out">
        <main aria-label="Sign in">{exchanging ? <p className="muted">Completing sign-in…</p> : <Login oauthError={oauthError} />}</main>
        <Alerts />
      </div>
    );
  }

  const denied = ADMIN_ONLY.has(route.page) && !session.admin;
  return (
    <div className="app">
      <a className="skip-link" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <Sidebar page={route.page} open={menuOpen} onNavigate={() => setMenuOpen(false)} />
      <div className="main">
        <Header title={title} menuOpen={menuOpen} onMenu={() => setMenuOpen((o) => !o)} />
        <main id="main" tabIndex={-1} className="content">
          {denied ? (
            <p className="access-denied" role="alert">
              Access Denied.
            </p>
          ) : (
            <Suspense fallback={<p className="muted">Loading…</p>}>
              <PageView page={route.page} detail={route.detail} admin={session.admin} />
            </Suspense>
          )}
        </main>
      </div>
      <Alerts />
    </div>
  );
}

function PageView({ page, detail, admin }: { page: string; detail: string; admin: boolean }) {
  switch (page) {
    case "qpus":
      return <Qpus admin={admin} />;
    case "drivers":
      return <Drivers />;
    case "monitoring":
      return <Monitoring />;
    case "jobs":
      return <Jobs selected={detail} admin={admin} />;
    case "bookings":
      return <Bookings />;
    case "settings":
      return <Settings />;
    case "admin":
      return <Admin />;
    default:
      return <Overview admin={admin} />;
  }
}
