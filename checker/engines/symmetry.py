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
`SearchResult.fired` lists the actions taken at the expanded members: an
action that fires only in orbits entered through another member shows as
its counterpart there (the same kind of action of the other thread, with
the same tags, so a property's trigger is seen either way).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from rseqcheck.checker.engines.compile import Layout
from rseqcheck.model.ir import System

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


def compile_sorting(system: System, L: Layout, slow: Callable[[int], int]) -> Callable[[int], int] | None:
    """A faster canonical form when the group permutes one set of members
    freely (`System.symmetry_group`) and each member's variables are one
    bit range laid out as the first member's: take each member's range to
    the first member's values (memoized), sort the members by it, put them
    back in that order and rename the variables that name a member.  States
    where two members are equal go to `slow` (the least image), so every
    orbit still has one canonical form.  None when the layout does not
    allow it."""
    group = system.symmetry_group
    if group is None:
        return None
    vars_of, maps, refs, names = group
    n = len(vars_of)

    def rel(vs: list[int]) -> tuple[int, list[tuple[int, int, int]]]:
        lo = min(L.shift[i] for i in vs)
        return lo, [(L.shift[i] - lo, L.mask[i], L.lo[i]) for i in vs]

    base0, fields = rel(vars_of[0])
    width = sum(m.bit_length() for _, m, _ in fields)
    if max(sh + m.bit_length() for sh, m, _ in fields) != width:
        return None  # not one contiguous range
    base = []
    for vs in vars_of:
        b, f = rel(vs)
        if f != fields:
            return None
        base.append(b)
    W = (1 << width) - 1
    reff = [(L.shift[i], L.mask[i], L.lo[i]) for i in refs]
    keep = (1 << L.bits) - 1
    for b in base:
        keep &= ~(W << b)
    for sh, m, _ in reff:
        keep &= ~(m << sh)
    to0 = maps
    from0 = [[{b: a for a, b in vm.items()} if vm else None for vm in ms] for ms in maps]
    member_of = {v: i for i, v in enumerate(names)}

    def convert(raw: int, vmaps: list) -> int:
        out = 0
        for (sh, m, lo), vm in zip(fields, vmaps):
            v = (raw >> sh) & m
            if vm:
                v = vm.get(v + lo, v + lo) - lo
            out |= v << sh
        return out

    # generated for n members: no loops, one renaming table per order
    env: dict[str, object] = {"slow": slow, "_CAP": _CAP}
    for i in range(n):
        env[f"N{i}"], env[f"D{i}"] = {}, {}
        env[f"to{i}"] = (lambda raw, i=i: convert(raw, to0[i]))
        env[f"from{i}"] = (lambda nb, i=i: convert(nb, from0[i]))
    rt: dict[tuple[int, ...], list[list[int]]] = {}
    for order in itertools.permutations(range(n)):
        pos = {i: j for j, i in enumerate(order)}
        rt[order] = [[(names[pos[member_of[v + lo]]] if v + lo in member_of else v + lo) - lo for v in range(m + 1)]
                     for _, m, lo in reff]
    env["RT"] = rt
    lines = ["def canon(x):"]
    for i in range(n):
        lines += [f"    r{i} = (x >> {base[i]}) & {W}", f"    n{i} = N{i}.get(r{i})", f"    if n{i} is None:",
                  f"        if len(N{i}) > _CAP: N{i}.clear()", f"        n{i} = N{i}[r{i}] = to{i}(r{i})"]
    lines.append("    ks = sorted((" + ", ".join(f"(n{i}, {i})" for i in range(n)) + "))")
    lines.append("    (" + ", ".join(f"(a{j}, i{j})" for j in range(n)) + ",) = ks")
    lines.append("    if " + " or ".join(f"a{j} == a{j + 1}" for j in range(n - 1)) + ": return slow(x)")
    lines.append(f"    y = x & {keep}")
    for j in range(n):
        lines += [f"    d = D{j}.get(a{j})", "    if d is None:", f"        if len(D{j}) > _CAP: D{j}.clear()",
                  f"        d = D{j}[a{j}] = from{j}(a{j})", f"    y |= d << {base[j]}"]
    if reff:
        lines.append("    t = RT[(" + ", ".join(f"i{j}" for j in range(n)) + ",)]")
        for k, (sh, m, _) in enumerate(reff):
            lines.append(f"    y |= t[{k}][(x >> {sh}) & {m}] << {sh}")
    lines.append("    return y")
    exec(compile("\n".join(lines) + "\n", "<canon-sorting>", "exec"), env)
    canon: Callable[[int], int] = env["canon"]  # type: ignore[assignment]
    return canon


_CAP = 1 << 20  # memo entries per member before it is emptied
