"""The scheduler actor: ``cluster.scheduler.Scheduler`` inside a Ray actor.

Constructor (the launcher wraps the class with ``ray.remote``, detached,
named, ``max_restarts=-1``)::

    SchedulerActor(server, token, ca_pem=None, *, ca_file=None, replica=0, state_dir=None,
                   leader_elect=True, lease_duration=15.0, renew_deadline=10.0, retry_period=2.0,
                   config=None)

``config`` holds ``SchedulerConfig`` fields (``bind_concurrency``, ...).

The scheduler runs on its own asyncio loop in a thread of the actor process,
so actor calls (``ready``, ``info``, ``shutdown``) never queue behind it. It
takes part in Lease leader election as ``<host>_scheduler-<replica>``: the
identity is stable, so when Ray restarts a killed replica it is recognised as
the holder and resumes at once (re-listing pods and nodes); a second replica
stands by and takes over when the holder's Lease expires. Killing the actor
(SIGKILL of its PID, ``ray.kill(no_restart=False)``) loses nothing: bound pods
are in the API server, pending ones are queued again after the re-list.
"""

from __future__ import annotations

from typing import Any

from ..runner.component import ComponentRunner


class SchedulerActor(ComponentRunner):
    component = "scheduler"
    lease_name = "kube-scheduler"

    def __init__(
        self,
        server: str,
        token: str,
        ca_pem: str | None = None,
        *,
        ca_file: str | None = None,
        replica: int = 0,
        state_dir: str | None = None,
        leader_elect: bool = True,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.config = dict(config or {})
        super().__init__(
            server,
            token,
            ca_pem,
            ca_file=ca_file,
            replica=replica,
            state_dir=state_dir,
            leader_elect=leader_elect,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )

    def make_component(self, client: Any) -> Any:
        # Lazy: only the actor process runs the scheduler; the launcher imports this module to wrap the class.
        from cluster.scheduler.scheduler import Scheduler, SchedulerConfig

        return Scheduler(client, SchedulerConfig(**self.config))
