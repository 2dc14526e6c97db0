"""The controller manager actor: ``cluster.controllers.ControllerManager`` inside a Ray actor.

Constructor (the launcher wraps the class with ``ray.remote``, detached,
named, ``max_restarts=-1``)::

    ControllerManagerActor(server, token, ca_pem=None, *, ca_file=None, profile="demo", replica=0,
                           state_dir=None, leader_elect=True, lease_duration=15.0, renew_deadline=10.0,
                           retry_period=2.0, controllers=None, resync_period=30.0, options=None)

``profile`` is a ``cluster.profiles`` name (``demo`` / ``kubernetes``);
``controllers`` a subset of ``replicaset, deployment, nodelifecycle,
garbagecollector, namespace, podgc`` (default: all).

Runs on its own asyncio loop in a thread of the actor process, takes part in
Lease leader election as ``<host>_controller-manager-<replica>`` (stable, so a
replica restarted by Ray resumes at once; a second replica stands by), and
keeps nothing that a re-list cannot rebuild.
"""

from __future__ import annotations

from typing import Any

from ..profiles import get_profile
from ..runner.component import ComponentRunner


class ControllerManagerActor(ComponentRunner):
    component = "controller-manager"
    lease_name = "kube-controller-manager"

    def __init__(
        self,
        server: str,
        token: str,
        ca_pem: str | None = None,
        *,
        ca_file: str | None = None,
        profile: str = "demo",
        replica: int = 0,
        state_dir: str | None = None,
        leader_elect: bool = True,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        controllers: list[str] | None = None,
        resync_period: float = 30.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        get_profile(profile)  # fail fast on a bad name
        self.profile = profile
        self.controllers = tuple(controllers) if controllers else None
        self.resync_period = resync_period
        self.options = dict(options or {})
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
        # Lazy: only the actor process runs the controllers; the launcher imports this module to wrap the class.
        from cluster.controllers.manager import ALL_CONTROLLERS, ControllerManager

        return ControllerManager(
            client,
            self.profile,
            controllers=self.controllers or ALL_CONTROLLERS,
            resync_period=self.resync_period,
            options=self.options,
        )

    def extra_info(self) -> dict[str, Any]:
        return {"profile": self.profile}
