"""NNG compatibility transport: the second transport behind the driver hub.

The published `qpi-driver` daemons (0.0.x legacy, 0.1 and later) speak TLS NNG pipeline
sockets. This package adapts them to `drivers.hub.DriverHub`, the seam every transport
uses, so they share the scheduler, leases and flow control of native gRPC drivers:

* `envelope` — message formats (pure);
* `sockets` — one driver's two pynng TLS listeners;
* `session` — the hub session refinement for a protocol without cancel messages;
* `channel` — one driver's listeners bridged to a hub session;
* `transport` — handshakes, port allocation (store/nng_ports.py), restore at start-up.
"""
