"""The built-in image catalog: container images that need no registry.

A container's ``image`` is looked up here by name (a ``:tag`` or ``@digest``
is accepted and ignored, as is a ``docker.io/`` prefix). Catalog images run
as ``python -m cluster.images.<name>`` with the interpreter the kubelet runs
on; ``raykube/host`` runs the container's ``command``/``args`` as a host
program. Every image is a real OS process group started by the process
runtime (``cluster.runtime``) with the pod's IP, env, working directory and
log file.

=================  ===========================================  ==================================================
image              what it runs                                 knobs (env, or ``args``)
=================  ===========================================  ==================================================
``raykube/web``    an HTTP server on ``$POD_IP:$PORT``           ``PORT`` (default: the first ``containerPort``,
                   (``PORT`` default 8080) answering ``GET /``   else 8080); ``READY_AFTER`` s before ``/readyz``
                   with its pod name; ``/healthz`` and          passes; ``START_DELAY`` s before it listens;
                   ``/readyz`` (200 or 503); ``/info`` (JSON);  ``FAIL_HEALTHZ_AFTER`` s after which ``/healthz``
                   ``/admin/healthz?ok=0|1`` and                fails; ``TERM_DELAY`` s it lingers after SIGTERM;
                   ``/admin/readyz?ok=0|1`` flip the checks;    ``MESSAGE`` (appended to the answer); args
                   logs each request to stdout                  ``--port N``
``raykube/busy``   a CPU-busy worker: ``WORKERS`` processes     ``WORKERS`` (1), ``DUTY`` (1.0 = 100 % busy),
                   spinning at ``DUTY``; optionally holds       ``MEMORY`` (e.g. ``64Mi``, default 0),
                   ``MEMORY`` bytes (grows in ``MEMORY_STEP``   ``MEMORY_STEP`` (``8Mi``), ``DURATION`` s (0 =
                   steps, good for OOM tests)                   forever); args ``--workers --duty --memory ...``
``raykube/crash``  prints, then exits with ``EXIT_CODE`` after  ``CRASH_AFTER`` (1.0 s), ``EXIT_CODE`` (1); args
                   ``CRASH_AFTER`` seconds (a crash-looper)     ``--after S --code N``
``raykube/host``   the container's ``command`` + ``args`` on    ``command`` is required (``command[0]`` is found
                   the host (``sh -c ...``, ``sleep``, ...)      on the host's ``PATH``)
=================  ===========================================  ==================================================

``command`` and ``args`` follow Docker/Kubernetes semantics: ``command``
replaces the image's entrypoint (so it runs a host program for any image),
``args`` replaces the image's default arguments; ``$(VAR)`` references to the
container's environment are expanded in both. Catalog images get
``PYTHONUNBUFFERED=1`` and ``PYTHONPATH`` pointing at raykube's source, and the
``-S`` interpreter flag (they use only the standard library) so they start in
tens of milliseconds.

An image that is not in the catalog leaves the container ``waiting`` with
reason ``ErrImagePull`` (then ``ImagePullBackOff`` between retries) and a
message naming the known images.
"""

from __future__ import annotations

import os
import sys

# Keep this package's import light: ``python -m cluster.images.<name>`` imports it first in every container.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Image:
    __slots__ = ("name", "module", "description", "digest")

    def __init__(self, name: str, module: str | None, description: str, digest: str) -> None:
        self.name = name
        self.module = module  # python module run with -m; None: a host command
        self.description = description
        self.digest = digest  # a stable fake digest for imageID

    def entrypoint(self) -> list[str]:
        return [sys.executable, "-S", "-m", self.module] if self.module else []

    def __repr__(self) -> str:
        return f"Image({self.name!r})"


# Stable fake digests for imageID (sha256 of "raykube-builtin/<name>/v1"), precomputed to keep imports light.
_DIGESTS = {
    "web": "sha256:210e97a327c92afff7d8f8cb1a027ce40340cc5416b3dd45ae42e99073c27f34",
    "busy": "sha256:4100f9885c49e5b606ec7c5009bcc35b919620b46311fd4d7a47a1f7ced27daa",
    "crash": "sha256:1e678c86e7aafcac884ba9c261a880cd6b910cb7cbfdbf5ceeefa11c368eebb1",
    "host": "sha256:d202b6a279d85a5dbafb8de13a09c13ff2a81d71d811d5ec4aaf655dba8850c0",
}


def _digest(name: str) -> str:
    return _DIGESTS[name]


CATALOG: dict[str, Image] = {
    img.name: img
    for img in (
        Image(
            "raykube/web",
            "cluster.images.web",
            "HTTP server answering with its pod name; /healthz, /readyz",
            _digest("web"),
        ),
        Image("raykube/busy", "cluster.images.busy", "CPU-busy worker (optionally holds memory)", _digest("busy")),
        Image("raykube/crash", "cluster.images.crash", "exits non-zero after N seconds", _digest("crash")),
        Image("raykube/host", None, "runs the container's command/args on the host", _digest("host")),
    )
}


class ImageNotFound(LookupError):
    """The image is not in the built-in catalog (the kubelet reports ErrImagePull)."""


def normalize(image: str) -> str:
    """``docker.io/raykube/web:1.2`` -> ``raykube/web``."""
    ref = (image or "").strip()
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)
    if ":" in last[-1]:
        ref = ref[: len(ref) - len(last[-1])] + last[-1].split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    return ref


def resolve(image: str) -> Image:
    """The catalog entry for ``image`` or ``ImageNotFound`` with a helpful message."""
    name = normalize(image)
    img = CATALOG.get(name)
    if img is None:
        raise ImageNotFound(
            f'image "{image}" not found: raykube runs only its built-in images, which need no '
            f"registry ({', '.join(sorted(CATALOG))}); see cluster/images"
        )
    return img


def image_id(image: str) -> str:
    img = resolve(image)
    return f"raykube-builtin://{img.name}@{img.digest}"


def catalog_table() -> list[dict[str, str]]:
    return [
        {
            "image": i.name,
            "runs": f"python -m {i.module}" if i.module else "command/args on the host",
            "description": i.description,
        }
        for i in CATALOG.values()
    ]
