"""Symmetry reduction for the explicit engine (`bfs(symmetry=True)`).

The system lists automorphisms (`System.symmetries`: per variable, where
it moves and how its values are renamed); the engine knows nothing else
about them.  Every state is entered in `seen` under its canonical form,
the least packed image under the group (`compile_canon`; the packed
engine's `with_canon` keys `seen` by it), so one member per orbit is
expanded: the first one found, a real successor of a real state, so a
trace read back through `seen` is a path of the system and BFS levels are
orbit distances, which are the shortest distances (an automorphism maps a
path into one orbit onto a path of the same length).  Properties and the
terminal condition must read only variables that every symmetry leaves in
place with their values, else the tables are refused (no reduction).
"""

from __future__ import annotations

from collections.abc import Callable

from checker.compile import Layout
from model.ir import System

Table = list[tuple[int, dict[int, int] | None]]


def usable(system: System) -> list[Table]:
    """The system's symmetries if its properties and terminal condition
    are invariant under them (they read only fixed variables), else []."""
    tables = system.symmetries
    if not tables:
        return []
    idx = {v: i for i, v in enumerate(system.vars)}
    watched = {idx[v] for p in system.properties for v in p.holds.vars()} | {idx[v] for v in system.terminal.vars()}
    for t in tables:
        for i in watched:
            if t[i] != (i, None):
                return []
    return tables


def compile_canon(tables: list[Table], L: Layout) -> Callable[[int], int]:
    """canon(x): the least of x's images under the tables, packed.  Each
    image is a few bit-field moves: variables kept in place share one mask,
    variables moved by the same shift share one, and renamed values go
    through a list per variable."""
    env: dict[str, object] = {}
    images = []
    for k, table in enumerate(tables):
        fixed = 0
        moved: dict[int, int] = {}  # shift difference -> source mask
        terms = []
        for i, (j, vm) in enumerate(table):
            m, sh, shj = L.mask[i], L.shift[i], L.shift[j]
            if vm is None or all(vm.get(v, v) == v for v in range(L.lo[i], L.hi[i] + 1)):
                if i == j:
                    fixed |= m << sh
                else:
                    moved[shj - sh] = moved.get(shj - sh, 0) | (m << sh)
                continue
            name = f"M{k}_{i}"
            env[name] = [vm.get(v + L.lo[i], v + L.lo[i]) - L.lo[j] for v in range(m + 1)]
            src = f"((x >> {sh}) & {m})" if sh else f"(x & {m})"
            terms.append(f"({name}[{src}] << {shj})" if shj else f"{name}[{src}]")
        if fixed:
            terms.append(f"(x & {fixed})")
        for d, mk in moved.items():
            terms.append(f"((x & {mk}) << {d})" if d >= 0 else f"((x & {mk}) >> {-d})")
        images.append(" | ".join(terms) or "0")
    src = "def canon(x):\n    c = x\n"
    for e in images:
        src += f"    y = {e}\n    if y < c: c = y\n"
    src += "    return c\n"
    exec(compile(src, "<canon>", "exec"), env)
    return env["canon"]  # type: ignore[return-value]
