"""The local-cluster launcher: ``raykube up`` / ``down`` / ``status`` / ``node`` for a raykube cluster on Ray.

One cluster per state directory (``statedir`` describes its files). Modules, bottom to top (each
imports only modules listed before it):

- ``errors``          ``LauncherError``: what went wrong that the user can act on.
- ``statedir``        the state directory: its paths, ``state.json``, private files, the address slot.
- ``processes``       PIDs, sessions, SIGTERM-then-SIGKILL; ``ports``: free, open, bindable ports.
- ``ray_session``     this cluster's Ray environment and auth; ``ray.init`` for a block.
- ``ray_head``        the Ray head that ``up`` starts: launch, wait, liveness.
- ``members``         the raftstore members: layout, processes, status.
- ``credentials``     tokens, kubeconfigs, API clients for any identity.
- ``control_plane``   raftstore members, API server, scheduler, controller manager as Ray actors.
- ``kubelet_actors``  kubelet actors on Ray (start, power off, stop, list), for any caller.
- ``nodes``           the kubelets of a cluster made by ``up``: start them all, add one, kill one.
- ``progress``        step-by-step progress on a console; ``kubectl``: the real kubectl's argv.
- ``bringup``         ``up``; ``teardown``: ``down``; ``status_report``: ``status``.

Importing the package is cheap (the standard library, psutil, raftstore's config, the light actor
modules): ``raykube kubectl`` runs it on every call, and ``up`` must launch the Ray head before anything
slow. Ray, the client library (aiohttp), cryptography, YAML and the API server's token table are imported
inside the functions that use them.

Concurrency: everything runs on the calling thread and blocks (the API and raftstore queries run short
asyncio loops of their own); ``up`` adds one thread that imports Ray while the head starts. Commands for
one state dir are meant to run one at a time; clusters in different state dirs run side by side.
"""

from . import nodes
from .bringup import DEFAULT_API_PORT, up
from .credentials import client_for, ensure_tokens, read_tokens, token_for
from .errors import LauncherError
from .kubectl import kubectl_argv, kubectl_path
from .members import MEMBERS, member_pids
from .ports import free_ports, port_bindable, port_open
from .processes import pid_alive, proc_sid, process_start_time, session_pids, terminate_pids
from .ray_head import head_alive
from .ray_session import NAMESPACE, ray_connection, ray_env
from .statedir import STATE_VERSION, Paths, default_state_dir, load_state, paths_for, save_state
from .status_report import status
from .teardown import down

__all__ = [
    "DEFAULT_API_PORT",
    "MEMBERS",
    "NAMESPACE",
    "STATE_VERSION",
    "LauncherError",
    "Paths",
    "client_for",
    "default_state_dir",
    "down",
    "ensure_tokens",
    "free_ports",
    "head_alive",
    "kubectl_argv",
    "kubectl_path",
    "load_state",
    "member_pids",
    "nodes",
    "paths_for",
    "pid_alive",
    "port_bindable",
    "port_open",
    "proc_sid",
    "process_start_time",
    "ray_connection",
    "ray_env",
    "read_tokens",
    "save_state",
    "session_pids",
    "status",
    "terminate_pids",
    "token_for",
    "up",
]
