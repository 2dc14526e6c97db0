"""The raykube controller manager (kube-controller-manager in small).

- ``manager``: ``ControllerManager`` - shared informers, runs every controller;
- ``base``: ``Controller`` (work queue + workers + resync), ``Context``, ``InformerFactory``;
- ``replicaset``, ``deployment`` (+ ``deployment_util``: the pure rolling-update
  arithmetic), ``nodelifecycle``, ``garbagecollector``, ``namespace``, ``podgc``;
- ``expectations``, ``discovery``, ``util`` (the event recorder is ``cluster.client.EventRecorder``);
- ``component``: flags, client and leader election shared with the scheduler;
- ``python -m cluster.controllers``: the process.

The Ray actor is ``cluster.actors.controller_manager.ControllerManagerActor``.
"""
