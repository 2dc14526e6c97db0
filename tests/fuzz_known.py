"""What the fuzzer knows the API server gets wrong today: each entry names the bug, and matches its answers.

``fuzz_harness`` counts and reports a matching answer instead of failing on
it, and does not send an operation whose entry has no status at all. Each
entry says which bug it is (issue 10's own and five the fuzzer found have
been fixed and removed) and matches as
narrowly as it can: the operation, the status, and what in the request or
answer makes it this bug. Remove an entry once its fix has landed; the
fuzzer then fails on the answer again if the fix did not hold.

Concurrency: read-only module data and pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class KnownBug:
    bug: str  # which bug this is, and where it is reported
    operation: str  # regex over "METHOD /path/template"
    status: int | None = None  # None: the operation is not sent at all; 0: no answer could be read
    when: Callable[[Any, Any], bool] = lambda case, resp: True  # (case, response or exception): this bug?


def content_type(resp: Any) -> str:
    """A schemathesis Response's Content-Type (its headers map lower-case names to lists of values)."""
    value = resp.headers.get("content-type") or [""]
    return str(value[0] if isinstance(value, list) else value)


def _no_log_source(case: Any, resp: Any) -> bool:
    return "no log source for node" in resp.text


def _too_many_headers(case: Any, exc: Any) -> bool:
    return "got more than 100 headers" in repr(exc)


KNOWN_BUGS: list[KnownBug] = [
    # Not a crash: the test's API server has no kubelets, so a pod bound to a node (by the fuzzer's binding
    # or spec.nodeName) has no log endpoint. (For a node that does not exist Kubernetes answers 404 instead.)
    KnownBug("pods/log without a kubelet (503 no log source)", r"/pods/\{name\}/log$", 503, _no_log_source),
    # Found by this fuzzer: fieldValidation=Warn sends one Warning header per unknown field, without a
    # limit; past 100 of them Python's http.client (requests, the official client) cannot read the answer.
    KnownBug("more than 100 Warning headers (unread answer)", r".", 0, _too_many_headers),
]
