"""Typed errors of the client library: what the API server said (``ApiError`` with its ``Status``), and
what the connection did (``Unavailable``, ``UnknownOutcome``, ``WatchDisconnected``).

``error_from_response`` turns an error response (status code, body, headers) into an ``ApiError``;
``reason_for`` names a status code as Kubernetes does when the body carries no ``Status``.

Concurrency: plain values and pure functions.
"""

from __future__ import annotations

import json
from typing import Any, Mapping


class ApiError(Exception):
    """An HTTP error from the API server, carrying its ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        status: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}
        self.retry_after = retry_after

    @property
    def details(self) -> dict[str, Any]:
        return self.status.get("details") or {}

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.code == 410


class Unavailable(ApiError):
    """The server could not be reached (or kept failing) until the retry deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "ServiceUnavailable", message)


class UnknownOutcome(ApiError):
    """A write whose connection broke after it was sent: it may or may not have been applied."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "UnknownOutcome", message)


class WatchDisconnected(ConnectionError):
    """A watch stream broke (not a normal end); resume from the last resourceVersion seen."""


def error_from_response(code: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    status: dict[str, Any] | None = None
    try:
        parsed = json.loads(body) if body else None
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            status = parsed
    except ValueError:
        pass
    ra = headers.get("Retry-After")
    try:
        retry_after = float(ra) if ra else None
    except ValueError:
        retry_after = None
    if status is None:
        text = body[:300].decode("utf-8", "replace").strip()
        return ApiError(code, reason_for(code), text or f"HTTP {code}", None, retry_after)
    return ApiError(
        int(status.get("code") or code),
        str(status.get("reason") or reason_for(code)),
        str(status.get("message") or ""),
        status,
        retry_after,
    )


def reason_for(code: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Gone",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }.get(code, "Unknown")
