import { formatBalance } from "../lib/format";
import { signOut, useSession } from "../state/session";
import { Card } from "../components/widgets";

export function Settings() {
  const session = useSession();
  if (!session) return null;
  return (
    <div className="page narrow">
      <Card title="Profile">
        <dl className="facts">
          <dt>Email</dt>
          <dd data-testid="profile-email">{session.record.email}</dd>
          <dt>Role</dt>
          <dd>
            <span className="badge">{session.admin ? "Administrator" : "User"}</span>
          </dd>
          <dt>QPU balance</dt>
          <dd>{session.admin ? "Unlimited" : formatBalance(session.record.qpu_seconds)}</dd>
        </dl>
        <div className="actions start">
          <button type="button" className="button" onClick={signOut}>
            Sign Out
          </button>
        </div>
      </Card>
    </div>
  );
}
