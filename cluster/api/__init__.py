"""``cluster.api``: the ground floor — Kubernetes object vocabulary as pure functions.

Every component (API server, scheduler, controllers, kubelet, client library)
uses these one copy of each: quantities (``quantity``), timestamps
(``timestamps``), label and field selectors (``selectors``), object metadata
and owner references (``meta``), conditions (``conditions``), pod phases and
readiness (``pods``), resource requests and allocatable (``resources``),
taints and tolerations (``taints``), node readiness (``nodes``).

Rule: nothing here imports anything else from ``cluster`` (a test checks it),
does I/O, or keeps state. Objects are the plain JSON dicts of the wire.

Concurrency: pure functions on caller-owned data; safe from any thread or task.
"""
