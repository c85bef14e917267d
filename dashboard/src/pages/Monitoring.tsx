import { Card } from "../components/widgets";

/** Cryostat telemetry; charts come with part 2 of the dashboard. */
export function Monitoring() {
  return (
    <div className="page narrow">
      <Card title="Cryostat monitors">
        <p className="muted">
          Readings from monitor drivers (kind <code>bluefors_gen1</code>) are stored as telemetry events and
          available from the <code>events</code> collection of the REST API; charts are not part of this
          dashboard version yet.
        </p>
      </Card>
    </div>
  );
}
