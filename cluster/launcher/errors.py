"""The one error the launcher raises for things the user can act on (a port in use, Ray unreachable, ...).

The CLI prints its message as is; any other exception is reported with its type. Concurrency: none.
"""

from __future__ import annotations


class LauncherError(RuntimeError):
    pass
