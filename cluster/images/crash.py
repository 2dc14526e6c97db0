"""``raykube/crash``: runs for ``CRASH_AFTER`` seconds (default 1), then exits with ``EXIT_CODE`` (default 1).

A crash-looper for restart and back-off demos. ``--after S --code N`` override the env.
"""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    after = float(os.environ.get("CRASH_AFTER") or 1.0)
    code = int(os.environ.get("EXIT_CODE") or 1)
    for i, a in enumerate(args[:-1]):
        if a == "--after":
            after = float(args[i + 1])
        elif a == "--code":
            code = int(args[i + 1])
    print(
        f"raykube/crash {os.environ.get('POD_NAME', '')}: running, will exit with code {code} in {after:g} s",
        flush=True,
    )
    time.sleep(max(0.0, after))
    print(f"raykube/crash: exiting with code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
