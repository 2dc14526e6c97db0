"""The API server actor: ``cluster.apiserver.APIServer`` inside a Ray actor.

The server runs on its own asyncio loop in a thread of the actor process
(not on Ray's async-actor loop), so actor method calls (``info``, ``ready``,
``shutdown``) never queue behind HTTP traffic and the server never waits on
Ray. Killing the actor (``ray.kill(no_restart=False)``, SIGKILL of its PID)
kills the server with it; Ray restarts the actor and ``__init__`` starts a
fresh server on the same port (``SO_REUSEADDR``; the bind is retried while
the old socket lingers). The server keeps nothing that isn't in raftstore,
so clients just reconnect (``cluster.client`` does it by itself; kubectl and
the ``kubernetes`` client open a new connection on their next request).

If the server cannot start within ``start_timeout`` the actor exits with an
error so Ray restarts it, rather than sitting alive and useless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import Any

from ..runner.process import bump_incarnation, freeze_startup_heap

log = logging.getLogger("raykube.actors.apiserver")


class APIServerActor:
    def __init__(
        self, config: dict[str, Any], replica: int = 0, state_dir: str | None = None, start_timeout: float = 60.0
    ) -> None:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        self.config = dict(config)
        self.replica = replica
        self.start_timeout = start_timeout
        self.started_at = time.time()
        self.state_dir = state_dir
        self.incarnation = (
            bump_incarnation(os.path.join(state_dir, "actors", f"apiserver-{replica}.incarnation")) if state_dir else 1
        )
        self.url: str | None = None
        self.ready_at: float | None = None
        self.error: str | None = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"apiserver-{replica}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        sys.setswitchinterval(0.001)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - report and let Ray restart us
            self.error = repr(exc)
            log.exception("API server failed")
            self._ready.set()
            os._exit(1)

    async def _main(self) -> None:
        # Lazy: the API server (~0.5 s to import) is needed in the actor process only; the launcher
        # imports this module to wrap the class.
        from cluster.apiserver.server import APIServer, APIServerConfig

        cfg = APIServerConfig(**self.config)
        self._stop = asyncio.Event()
        deadline = time.monotonic() + self.start_timeout
        while True:
            server = APIServer(cfg)
            try:
                await server.start()
                break
            except Exception as exc:  # noqa: BLE001 - port still held, raftstore still electing, ...
                try:
                    await server.stop()
                except Exception:  # noqa: BLE001
                    pass
                if time.monotonic() > deadline:
                    raise
                log.warning("API server start failed (%r); retrying", exc)
                await asyncio.sleep(0.2)
        self.url = server.url
        freeze_startup_heap()
        self.ready_at = time.time()
        self._ready.set()
        log.info("API server replica %d (incarnation %d) serving at %s", self.replica, self.incarnation, self.url)
        await self._stop.wait()
        await server.stop()

    # ------------------------------------------------------------ remote API
    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"API server replica {self.replica} not serving after {timeout} s")
        if self.error:
            raise RuntimeError(self.error)
        return self.info()

    def info(self) -> dict[str, Any]:
        return {
            "name": f"apiserver-{self.replica}",
            "component": "apiserver",
            "actor_pid": os.getpid(),
            "url": self.url,
            "ready": self._ready.is_set() and not self.error,
            "incarnation": self.incarnation,
            "started_at": self.started_at,
            "ready_at": self.ready_at,
            "startup_seconds": (self.ready_at - self.started_at) if self.ready_at else None,
            "state_dir": self.state_dir,
        }

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop serving (graceful: open watches end, connections close); the actor stays up."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        return not self._thread.is_alive()
