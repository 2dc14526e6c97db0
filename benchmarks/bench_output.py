"""Output shared by the benchmarks: the JSON result file and the PNG beside it.

Every benchmark writes its result as indented JSON to ``--out`` (creating
the folder) and a matplotlib figure to the same path with ``.png``; these
helpers keep that identical everywhere.  Synchronous file I/O, called once
at the end of a run; matplotlib is imported lazily (Agg backend: no display)
so a benchmark that fails early never pays for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


def write_json(path: str, doc: Any, default: Callable[[Any], Any] = str) -> None:
    """Write ``doc`` to ``path`` as JSON indented by 2, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, default=default)


def png_beside(json_path: str) -> str:
    """The plot's path: the JSON file's with ``.png`` for its extension."""
    return os.path.splitext(json_path)[0] + ".png"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str) -> None:
    """Lay out, write at 110 dpi and free ``fig`` (every benchmark plot looks alike)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
