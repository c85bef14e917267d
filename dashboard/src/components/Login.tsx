import { useEffect, useState, type FormEvent, type KeyboardEvent } from "react";
import { ApiError } from "../api/client";
import type { AuthMethods } from "../api/types";
import { authMethods, signInWithPassword } from "../state/session";
import { Modal } from "./Modal";

type Role = "user" | "admin";
const ROLES: { id: Role; label: string }[] = [
  { id: "user", label: "Regular User" },
  { id: "admin", label: "Administrator" },
];

/** The blocking sign-in dialog with role tabs, password form and OAuth2 providers. */
export function Login({ oauthError }: { oauthError: string }) {
  const [role, setRole] = useState<Role>("user");
  const [methods, setMethods] = useState<Record<Role, AuthMethods | null>>({ user: null, admin: null });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(oauthError);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    for (const r of ["user", "admin"] as const) {
      authMethods(r === "admin")
        .then((m) => live && setMethods((prev) => ({ ...prev, [r]: m })))
        .catch(() => live && setError("The server could not be reached."));
    }
    return () => {
      live = false;
    };
  }, []);

  const current = methods[role];
  // Administrators can always use their password.
  const passwordEnabled = role === "admin" || (current?.password.enabled ?? true);
  // Each provider's authURL starts the server-side authorization-code + PKCE flow.
  const providers =
    role === "user" ? (current?.oauth2.providers ?? []).filter((p) => p.authURL) : [];

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      await signInWithPassword(role === "admin", email.trim(), password);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      setBusy(false);
    }
  };

  const onTabKey = (event: KeyboardEvent) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const next: Role = role === "user" ? "admin" : "user";
    setRole(next);
    setError("");
    document.getElementById(`login-tab-${next}`)?.focus();
  };

  return (
    <Modal title="Sign in to QPI" onClose={() => undefined} blocking>
      <div role="tablist" aria-label="Account type" className="tabs" onKeyDown={onTabKey}>
        {ROLES.map((r) => (
          <button
            key={r.id}
            id={`login-tab-${r.id}`}
            type="button"
            role="tab"
            aria-selected={role === r.id}
            aria-controls="login-panel"
            tabIndex={role === r.id ? 0 : -1}
            className={role === r.id ? "tab active" : "tab"}
            onClick={() => {
              setRole(r.id);
              setError("");
            }}
          >
            {r.label}
          </button>
        ))}
      </div>
      <div id="login-panel" role="tabpanel" aria-labelledby={`login-tab-${role}`}>
        {passwordEnabled ? (
          <form onSubmit={submit} className="form">
            <label>
              Email
              <input
                type="email"
                autoComplete="username"
                required
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            </label>
            <label>
              Password
              <input
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
            <button type="submit" className="button primary" disabled={busy}>
              {busy ? "Signing in…" : role === "admin" ? "Sign in as administrator" : "Sign in"}
            </button>
          </form>
        ) : (
          <p className="muted">Password sign-in is disabled on this server.</p>
        )}
        {providers.length > 0 && (
          <div className="oauth" aria-label="Sign in with a provider">
            {passwordEnabled && <p className="divider">or</p>}
            {providers.map((p) => (
              <a
                key={p.name}
                className="button oauth-button"
                href={p.authURL}
              >
                Continue with {p.displayName || p.name}
              </a>
            ))}
          </div>
        )}
        {error && (
          <p role="alert" className="error-text">
            {error}
          </p>
        )}
      </div>
    </Modal>
  );
}
