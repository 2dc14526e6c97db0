"""Ray actor classes of the control plane.

They are plain classes: ``cluster.launcher`` wraps them with ``ray.remote``
(detached, named, in the ``raykube`` namespace, ``max_restarts=-1``), so the
modules import without Ray and stay unit-testable.

- ``raftstore_member.RaftstoreMemberActor``: supervises one raftstore member
  process (a child of the actor) and dies with it, so Ray's restart is the
  one recovery path;
- ``apiserver.APIServerActor``: runs ``cluster.apiserver.APIServer`` on its
  own asyncio loop thread inside the actor process.

- ``scheduler.SchedulerActor`` and ``controller_manager.ControllerManagerActor``:
  ``cluster.runner.component.ComponentRunner`` under leader election;
- ``kubelet.KubeletActor``: one node's kubelet, pinned to a Ray node.
"""
