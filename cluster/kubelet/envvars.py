"""A container's environment and the ``$(VAR)`` expansion Kubernetes applies to env, command and args."""

from __future__ import annotations

import math
import re
from typing import Any, Awaitable, Callable

from ..api.quantity import QuantityError, parse_quantity


class EnvError(Exception):
    """The env cannot be built (reason CreateContainerConfigError)."""


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion: ``$(VAR)`` -> value if defined (else left as is), ``$$`` -> ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, text)


def field_ref(pod: dict[str, Any], path: str) -> str:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": md.get("name"),
        "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": st.get("hostIP"),
        "status.podIP": st.get("podIP"),
        "status.hostIPs": ",".join(i.get("ip", "") for i in st.get("hostIPs") or []),
        "status.podIPs": ",".join(i.get("ip", "") for i in st.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        d = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
    if path not in simple:
        raise EnvError(f"unsupported fieldRef fieldPath {path!r}")
    return "" if simple[path] is None else str(simple[path])


def resource_ref(container: dict[str, Any], ref: dict[str, Any], node_alloc: dict[str, str]) -> str:
    res = ref.get("resource") or ""
    kind, _, name = res.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = node_alloc.get(name)  # Kubernetes: an unset limit reads as node allocatable
    if value is None:
        return "0"
    try:
        q = parse_quantity(str(value))
        div = parse_quantity(str(ref.get("divisor") or "1"))
    except QuantityError as exc:
        raise EnvError(f"bad quantity in resourceFieldRef {res}: {exc}") from None
    return str(int(math.ceil(q / div)))


Lookup = Callable[[str, str, str], Awaitable[dict[str, str] | None]]  # (kind, namespace, name) -> data


async def build_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    base: dict[str, str],
    node_alloc: dict[str, str],
    lookup: Lookup | None,
) -> dict[str, str]:
    """``base`` (PATH, POD_NAME, ...) + ``envFrom`` + ``env``, with ``$(VAR)`` expansion in order."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    env = dict(base)
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            data = await lookup(kind, ns, ref.get("name", "")) if lookup else None
            if data is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind[:-1]} "{ref.get("name")}" not found')
            for k, v in data.items():
                env[prefix + k] = v
    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "value" in e or not e.get("valueFrom"):
            env[name] = expand(str(e.get("value") or ""), env)
            continue
        vf = e["valueFrom"]
        if vf.get("fieldRef"):
            env[name] = field_ref(pod, (vf["fieldRef"] or {}).get("fieldPath", ""))
        elif vf.get("resourceFieldRef"):
            env[name] = resource_ref(container, vf["resourceFieldRef"], node_alloc)
        else:
            for kind, key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
                ref = vf.get(key)
                if not ref:
                    continue
                data = await lookup(kind, ns, ref.get("name", "")) if lookup else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    what = f'{kind[:-1]} "{ref.get("name")}"'
                    raise EnvError(
                        f"{what} not found" if data is None else f"couldn't find key {ref.get('key')} in {what}"
                    )
                env[name] = data[ref["key"]]
                break
    return env
