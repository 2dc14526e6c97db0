"""The Kubernetes-compatible API server of raykube (storage: raftstore).

Modules:

- ``server``      APIServerConfig / APIServer: aiohttp app, routing, watch streaming, logs.
- ``registry``    REST semantics: create/update/patch/delete, subresources, pagination.
- ``storage``     raftstore keys, encoding, compare-and-swap txns.
- ``watch``       WatchHub: one raftstore watch fanned out to every API watch.
- ``resources``   the served resources (ResourceDef).
- ``validation``  per-resource defaulting and validation.
- ``schema``      typed decoding against ``schema_data`` (unknown fields, types, required).
- ``patch``       JSON merge patch, strategic merge patch, JSON patch.
- ``protobuf``    decoding of kubectl's protobuf request bodies (typed ``kubectl create ...``).
- ``selector``    label and field selectors.
- ``quantity``    resource quantities.
- ``tables``      server-side printing (meta.k8s.io Table).
- ``discovery``   discovery documents, aggregated discovery, OpenAPI v3.
- ``auth``        bearer tokens, authorisation, ``generate_tokens``.
- ``errors``      Kubernetes Status errors.
- ``schema_data`` generated field schemas (``_schemagen.py`` makes it from the kubernetes client).

Run standalone: ``python -m cluster.apiserver --raftstore-endpoints ...``.
"""

from .auth import generate_tokens
from .server import APIServer, APIServerConfig

__all__ = ["APIServer", "APIServerConfig", "generate_tokens"]
