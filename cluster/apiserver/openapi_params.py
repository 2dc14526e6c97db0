"""The parameters of the served OpenAPI operations: path parameters and query options per verb.

The names, types and wording are kube-apiserver's; where the server accepts
a closed set of values (``dryRun``, ``fieldValidation``,
``resourceVersionMatch``, ``propagationPolicy``) the schema says so. Only
the options the server reads are listed (``ListOptions`` for lists, watches
and collection deletes, ``CreateOptions``/``UpdateOptions``/``PatchOptions``
for writes, ``DeleteOptions`` for deletes, ``PodLogOptions`` for logs).

Concurrency: read-only module data; ``openapi`` copies nothing, the server
serialises the documents once.
"""

from __future__ import annotations

from typing import Any

from .openapi_schemas import ref

Param = dict[str, Any]


def _q(name: str, schema: dict[str, Any], description: str) -> Param:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

PRETTY = _q("pretty", _STR, "If 'true', then the output is pretty printed.")


def path_params(namespaced: bool, named: bool, kind: str) -> list[Param]:
    out: list[Param] = []
    if named:
        out.append(
            {"name": "name", "in": "path", "required": True, "description": f"name of the {kind}", "schema": _STR}
        )
    if namespaced:
        out.append(
            {
                "name": "namespace",
                "in": "path",
                "required": True,
                "description": "object name and auth scope, such as for teams and projects",
                "schema": _STR,
            }
        )
    return out


_LABEL = _q(
    "labelSelector",
    _STR,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
)
_FIELD = _q(
    "fieldSelector",
    _STR,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
)
_LIMIT = _q(
    "limit",
    _INT,
    "limit is a maximum number of responses to return for a list call. If more items exist, the server will set "
    "the `continue` field on the list metadata to a value that can be used with the same initial query to "
    "retrieve the next set of results. This field is not supported if watch is true.",
)
_CONTINUE = _q(
    "continue",
    _STR,
    "The continue option should be set when retrieving more results from the server. If the specified continue "
    "value is no longer valid the server will respond with a 410 ResourceExpired error.",
)
_RV = _q(
    "resourceVersion",
    _STR,
    "resourceVersion sets a constraint on what resource versions a request may be served from. See "
    "https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
)
_RV_MATCH = _q(
    "resourceVersionMatch",
    {"type": "string", "enum": ["Exact", "NotOlderThan"]},
    "resourceVersionMatch determines how resourceVersion is applied to list calls.",
)
_TIMEOUT = _q(
    "timeoutSeconds",
    _INT,
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
)
_SEND_INITIAL = _q(
    "sendInitialEvents",
    _BOOL,
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with "
    "synthetic events to produce the current state of objects in the collection. Requires "
    "resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true.",
)
_WATCH = _q(
    "watch",
    _BOOL,
    "Watch for changes to the described resources and return them as a stream of add, update, and remove "
    "notifications. Specify resourceVersion.",
)
_BOOKMARKS = _q(
    "allowWatchBookmarks",
    _BOOL,
    'allowWatchBookmarks requests watch events with type "BOOKMARK". If this is not a watch, this field is ignored.',
)

# A collection delete filters like a list (it does not watch).
LIST_FILTERS = [_CONTINUE, _FIELD, _LABEL, _LIMIT, _RV, _RV_MATCH, _SEND_INITIAL, _TIMEOUT]
LIST = [_BOOKMARKS] + LIST_FILTERS + [_WATCH]

_DRY_RUN = _q(
    "dryRun",
    {"type": "string", "enum": ["All"]},
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun "
    "directive will result in an error response and no further processing of the request. Valid values are: "
    "- All: all dry run stages will be processed",
)
_FIELD_MANAGER = _q(
    "fieldManager",
    {"type": "string", "maxLength": 128},
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be "
    "less than or 128 characters long. Required for apply requests (application/apply-patch).",
)
_FIELD_VALIDATION = _q(
    "fieldValidation",
    {"type": "string", "enum": ["Ignore", "Warn", "Strict"]},
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore: ignores unknown/duplicate fields. - Warn: responds "
    "with a warning for each unknown/duplicate field, but successfully serves the request (the default). - "
    "Strict: fails the request on unknown/duplicate fields.",
)
_FORCE = _q(
    "force",
    _BOOL,
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other '
    "people. Force flag must be unset for non-apply patch requests.",
)
WRITE = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
PATCH = WRITE + [_FORCE]

DELETE = [
    _DRY_RUN,
    _q(
        "gracePeriodSeconds",
        _INT,
        "The duration in seconds before the object should be deleted. Value must be non-negative integer. The "
        "value zero indicates delete immediately.",
    ),
    _q(
        "orphanDependents",
        _BOOL,
        "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
    ),
    _q(
        "propagationPolicy",
        {"type": "string", "enum": ["Orphan", "Background", "Foreground"]},
        "Whether and how garbage collection will be performed.",
    ),
]

LOG = [
    _q("container", _STR, "The container for which to stream logs. Defaults to only container if there is one."),
    _q("follow", _BOOL, "Follow the log stream of the pod. Defaults to false."),
    _q("limitBytes", _INT, "If set, the number of bytes to read from the server before terminating the output."),
    _q("previous", _BOOL, "Return previous terminated container logs. Defaults to false."),
    _q("sinceSeconds", _INT, "A relative time in seconds before the current time from which to show logs."),
    _q("sinceTime", {"type": "string", "format": "date-time"}, "An RFC3339 timestamp from which to show logs."),
    _q("tailLines", _INT, "If set, the number of lines from the end of the logs to show."),
    _q("timestamps", _BOOL, "If true, add an RFC3339 timestamp at the beginning of every line of log output."),
]


def delete_body() -> dict[str, Any]:
    """A DELETE's optional ``DeleteOptions`` body."""
    schema = ref("V1DeleteOptions")
    return {"content": {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}}}
