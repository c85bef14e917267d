"""Running several `qpi serve` replicas on one database: the event relay (each replica's
event bus sees the others' events), the replica registry (liveness and the cluster-wide
directory of driver sessions) and leadership (background work that runs once per
cluster)."""
