"""The import graph of raftstore/ and cluster/ and the layering rules it must keep.

Read by ``tests/test_layering.py``; also runnable (``python tests/layering.py``)
to print the graph's counts: modules, edges, back-up edges, cycles.

The rules (DESIGN.md's "dependencies flow one way", made checkable):
- raftstore imports nothing from cluster and not Ray.
- Inside cluster, packages stand on floors: the ground floor ``cluster.api``;
  leaves (profiles, addresses, pki, kubeconfig, images); the client library and
  the component runner; the components; the Ray actor wrappers; the local
  cluster launcher and the CLI. An import may go to the same floor or below,
  never up.
- Components meet only through the client library and the ground floor: a
  component imports no other component, except the few edges in
  ``COMPONENT_EDGES`` (a kubelet drives a runtime and a pod network).
- Only the API server (and, to start members, the actors and the launcher)
  imports raftstore.
- No import cycles between modules.

Imports under ``if TYPE_CHECKING:`` are not edges: they never run.

Concurrency: none; pure functions over source text read once.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("raftstore", "cluster")

# floor of each part of cluster (by the first name after "cluster."); higher floors may import lower ones
FLOORS: dict[str, int] = {
    "api": 0,
    "profiles": 1,
    "addresses": 1,
    "pki": 1,
    "kubeconfig": 1,
    "images": 1,
    "client": 2,
    "runner": 2,
    "apiserver": 3,
    "scheduler": 3,
    "controllers": 3,
    "kubelet": 3,
    "runtime": 3,
    "network": 3,
    "hollow": 3,
    "proxy": 3,
    "dns": 3,
    "registry": 3,
    "actors": 4,
    "launcher": 5,
    "cli": 5,
    "chaos": 5,
}
COMPONENT_FLOOR = 3
# component -> the other components it may import
COMPONENT_EDGES: dict[str, set[str]] = {
    "kubelet": {"runtime", "network"},
    "hollow": {"kubelet", "runtime", "network"},
}
MAY_IMPORT_RAFTSTORE = {"apiserver", "actors", "launcher", "cli", "chaos"}


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)  # module -> modules of ours it imports
    external: dict[str, set[str]] = field(default_factory=dict)  # module -> top-level outside names


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for inner in ast.walk(sub):
                    skip.add(id(inner))
    return skip


def build_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> Graph:
    modules = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    g = Graph(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_nodes(tree)
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        deps: set[str] = set()
        ext: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    targets.append(sub if sub in modules else mod)
            for t in targets:
                r = _resolve(t, modules)
                if r is None:
                    ext.add(t.split(".")[0])
                elif r != name:
                    deps.add(r)
        g.edges[name] = deps
        g.external[name] = ext
    return g


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that ``import target`` runs last (None if it is not ours)."""
    t = target
    while t:
        if t in modules:
            return t
        t = t.rpartition(".")[0]
    return None


def part_of(module: str) -> str | None:
    """``cluster.kubelet.pods`` -> ``kubelet``; None outside cluster or for ``cluster`` itself."""
    bits = module.split(".")
    return bits[1] if bits[0] == "cluster" and len(bits) > 1 else None


def violations(g: Graph) -> list[str]:
    out: list[str] = []
    for src, deps in sorted(g.edges.items()):
        top = src.split(".")[0]
        if top == "raftstore":
            out += [f"{src} -> {d}: raftstore must not import cluster" for d in sorted(deps) if d.startswith("cluster")]
            if "ray" in g.external[src]:
                out.append(f"{src} imports ray: raftstore must run without Ray")
            continue
        sp = part_of(src)
        if sp is None:
            continue
        if sp not in FLOORS:
            out.append(f"{src}: cluster.{sp} has no floor in tests/layering.py FLOORS; give it one")
            continue
        if "raftstore" in {d.split(".")[0] for d in deps} and sp not in MAY_IMPORT_RAFTSTORE:
            out.append(f"{src} imports raftstore: only the API server talks to the store")
        for d in sorted(deps):
            dp = part_of(d)
            if dp is None or dp == sp:
                if d == "cluster" and sp != "cli":
                    out.append(f"{src} -> cluster: import the module you need, not the top package")
                continue
            if dp not in FLOORS:
                continue  # reported for the module itself
            if FLOORS[dp] > FLOORS[sp]:
                out.append(f"{src} -> {d}: runs back up (floor {FLOORS[sp]} imports floor {FLOORS[dp]})")
            elif FLOORS[dp] == FLOORS[sp] == COMPONENT_FLOOR and dp not in COMPONENT_EDGES.get(sp, set()):
                out.append(f"{src} -> {d}: components meet only through cluster.client and cluster.api")
    return out


def cycles(g: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(g.edges):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(g.edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, pending = work[-1]
            if pending:
                w = pending.pop()
                if w not in g.edges:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, sorted(g.edges[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main() -> int:
    g = build_graph()
    v = violations(g)
    c = cycles(g)
    n_edges = sum(len(d) for d in g.edges.values())
    print(f"{len(g.modules)} modules, {n_edges} import edges, {len(v)} rule violations, {len(c)} cycles")
    for line in v:
        print("  violation:", line)
    for comp in c:
        print("  cycle:", " <-> ".join(comp))
    return 1 if v or c else 0


if __name__ == "__main__":
    sys.exit(main())
