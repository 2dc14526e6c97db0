"""The Kubernetes-compatible API server of raykube (storage: raftstore).

A request goes through the rooms in this order:

- ``server``       APIServerConfig / APIServer: start and stop, bootstrap
                   (default namespaces, the ``kubernetes`` service), dispatch,
                   discovery and OpenAPI handlers, one handler per verb.
- ``routing``      path -> resource route (``Route``), method -> verb, the verbs
                   a path serves (the rest: 405).
- ``auth``         bearer tokens, authorisation, ``generate_tokens``.
- ``negotiation``  request bodies in (JSON, YAML, kubectl's protobuf; 413/415)
                   and responses out (object, Table, PartialObjectMetadata).
- ``options``      query options of writes, lists and deletes (``WriteOptions``).
- ``registry``     Registry: the generic store - get, list, create, guaranteed
                   update, update, patch, server-side apply, delete - over raftstore.
- ``lifecycle``    the pure steps every write takes whatever the kind (decoding,
                   server-set metadata, validation, deletion decisions, patches).
- ``strategy``     the Strategy interface: what the registry asks of a kind.
- ``strategies/``  one module per kind (defaulting, validation, its Strategy)
                   and the ``STRATEGIES`` table; ``podspec``, ``workloads`` and
                   ``serviceallocator`` serve several kinds.
- ``admission``    NamespaceLifecycle: no creates in missing or terminating namespaces.
- ``subresources`` binding, eviction, scale.
- ``deletecollection`` DELETE of a collection: each object through the normal delete.
- ``managedfields`` server-side apply's field sets and ``managedFields``.
- ``listing``      paginated lists and continue tokens.
- ``watchstream``  API watches streamed over HTTP.
- ``watch``        WatchHub: one raftstore watch fanned out to every API watch.
- ``logs``         ``pods/log`` from a log source or the pod's kubelet.
- ``storage``      raftstore keys, encoding, compare-and-swap txns.

Vocabulary the rooms share:

- ``resources``    the served resources (ResourceDef) and lookups.
- ``validation``   what every kind's validation shares (names, labels, metadata).
- ``schema``       typed decoding against ``schema_data`` (unknown fields, types, required).
- ``jsonvalue``    what a parsed body may hold (finite numbers, UTF-8 strings,
                   bounded nesting; YAML made JSON).
- ``patch``        JSON merge patch, strategic merge patch, JSON patch.
- ``protobuf``     decoding of kubectl's protobuf request bodies (typed ``kubectl create ...``).
- ``selector``     label and field selectors (``cluster.api.selectors`` with 400s).
- ``tables``       server-side printing (meta.k8s.io Table).
- ``discovery``    discovery documents, aggregated discovery, OpenAPI v3.
- ``errors``       Kubernetes Status errors.
- ``schema_data``  generated field schemas (``_schemagen.py`` makes it from the kubernetes client).

A new kind is a ``ResourceDef`` in ``resources`` and a module in
``strategies/`` with an entry in ``strategies.STRATEGIES`` (and, for
``kubectl get`` columns beyond NAME and AGE, an entry in ``tables.COLUMNS``).

Run standalone: ``python -m cluster.apiserver --raftstore-endpoints ...``.
"""

from .auth import generate_tokens
from .server import APIServer, APIServerConfig

__all__ = ["APIServer", "APIServerConfig", "generate_tokens"]
