"""Running several `qpi serve` replicas on one database: the replica registry (liveness
and the cluster-wide directory of driver sessions) and leadership (background work that
must run once per cluster)."""
