import { Card } from "../components/widgets";
import { hrefOf } from "../lib/router";

/** Administration entry point; the tools themselves come with part 2 of the dashboard. */
export function Admin() {
  return (
    <div className="page narrow">
      <Card title="Administration">
        <p>
          Register QPUs in the <a href={hrefOf("qpus")}>QPU Registry</a> and drivers on the{" "}
          <a href={hrefOf("drivers")}>Drivers</a> page.
        </p>
        <p className="muted">
          User time allocations, announcements, time requests and appearance settings are not part of this
          dashboard version yet; the REST API (<a href="/docs">/docs</a>) offers them.
        </p>
      </Card>
    </div>
  );
}
