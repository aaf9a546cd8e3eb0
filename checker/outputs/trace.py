"""Counterexample traces: a NetworkX DiGraph built from an engine's path, and
the renderers that read only that graph: text (for email, at most 72
columns), ITF JSON (Apalache's Informal Trace Format), DOT and GraphML (in
the style of SV-COMP violation witnesses).

Graph: nodes 0..n are states (attribute `vars`: {name: value as shown},
`index`); edges i -> i+1 are actions (attributes `label`, `actor`,
`kernel_fn`, `rule`, `proc`).  Graph attributes carry the header (spec,
property, preset, rules, tool version, spec hash).
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
from rseqcheck.checker.outputs.escape import dot_string, xml_clean
from rseqcheck.model.ir import System, Var

WIDTH = 72
FORMATS = ("text", "json", "dot", "graphml")

Shown = bool | int | str


def show_value(v: Var, x: int) -> Shown:
    """A variable's value as traces show it: bools, ints, enum names."""
    if v.type.is_bool:
        return bool(x)
    if v.type.names is not None:
        return v.type.fmt(int(x))
    return int(x)


def show_state(system: System, state: Sequence[int]) -> dict[str, Shown]:
    return {v.name: show_value(v, x) for v, x in zip(system.vars, state)}


def build_graph(system: System, path: list[tuple[int, tuple]], header: dict[str, Any]) -> nx.DiGraph:
    g = nx.DiGraph(**header)
    for i, (a, state) in enumerate(path):
        g.add_node(i, index=i, vars=show_state(system, state))
        if i > 0:
            act = system.actions[a]
            g.add_edge(
                i - 1,
                i,
                label=act.label,
                actor=act.actor,
                kernel_fn=act.kernel_fn,
                rule=act.rule,
                proc=act.proc,
            )
    return g


def steps(g: nx.DiGraph) -> list[tuple[dict, dict, dict]]:
    """(edge attrs, state before, state after) for each step, in order."""
    n = g.number_of_nodes()
    return [(g.edges[i - 1, i], g.nodes[i - 1]["vars"], g.nodes[i]["vars"]) for i in range(1, n)]


_FRAME_VAR = re.compile(r"(.+)\.(?:ip|f)(\d+)(?:\.|$)")


_REG_VAR = re.compile(r".+\.(%r\d+)$")
_REG_WRITERS = ("mov", "load", "add", "sub")


def changes(before: dict, after: dict, label: str | None = None) -> list[str]:
    """What a step changed, leaving out the slots of frames it popped (a
    popped frame's ip and saved state go back to their initial values,
    which mean nothing): `T.ip<d>` and `T.f<d>.*` above the new `T.depth`.
    Given the step's `label`, also a register reset to 0 because its value
    is dead (model/data.py:dead_after) by an instruction that does not
    write it."""
    out = []
    words = (label or "").replace(",", " ").split()
    for k, v in after.items():
        if before.get(k) == v:
            continue
        r = _REG_VAR.match(k) if label is not None and v == 0 else None
        if r and not (words[:1] and words[0] in _REG_WRITERS and words[1:2] == [r.group(1)]) \
                and not label.startswith("rt_sigreturn"):
            continue
        m = _FRAME_VAR.fullmatch(k) or _FRAME_VAR.match(k)
        if m and int(m.group(2)) > 0:
            depth = after.get(f"{m.group(1)}.depth")
            if isinstance(depth, int) and int(m.group(2)) > depth:
                continue
        out.append(f"{k}={_fmt(v)}")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


# --------------------------------------------------------------------- text


def _wrap(text: str, width: int, first: str = "", rest: str | None = None, hyphens: bool = True) -> list[str]:
    """textwrap.wrap with indents, keeping paths and kernel function names
    whole when they fit; a word longer than the line is cut, so no line is
    ever wider than `width` (email clients re-wrap anything longer)."""
    rest = first if rest is None else rest
    lines = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=hyphens
    ) or [first]
    out: list[str] = []
    for line in lines:
        while len(line) > width:
            cut = max(width, len(rest) + 8)
            # prefer a cut after a path's / or a function's : over mid-word
            at = max(line.rfind(c, len(rest) + 8, cut) for c in "/:,")
            cut = at + 1 if at > 0 else cut
            out.append(line[:cut])
            line = rest + line[cut:]
        out.append(line)
    return out


# One column (lane) per context: each thread, each of its handler frames,
# its kernel side, then the environment.  A lane's column holds `*` where
# its context takes the step, `|` while the context exists (a handler frame
# is on the stack, the thread is inside the kernel), blank otherwise; the
# step's text follows the lanes.  A staggered header names the lanes, so
# even 9 lanes (3 threads, 2 frames each) cost 18 columns.

_FRAME = re.compile(r"^(?P<t>.+)\.h(?P<d>[0-9]+)$")
_KERNEL = ":kernel"
_MIN_TEXT = 36  # columns left for a step's text, else no lanes (actor inline)


@dataclass(frozen=True)
class Lane:
    name: str  # as the trace's actors write it: T0, T0.h1, T0:kernel, env
    thread: str | None
    kind: str  # "user" | "handler" | "kernel" | "other"
    frame: int = 0  # a handler's depth (a kernel lane: of the actor that named it)


def _context(actor: str) -> Lane:
    """The lane an actor's steps go to (a kernel step of a handler frame,
    "T0.h1:kernel", goes to its thread's kernel lane)."""
    if actor.endswith(_KERNEL) and len(actor) > len(_KERNEL):
        base = actor[: -len(_KERNEL)]
        m = _FRAME.match(base)
        t = m["t"] if m else base
        return Lane(t + _KERNEL, t, "kernel", int(m["d"]) if m else 0)
    m = _FRAME.match(actor)
    if m:
        return Lane(actor, m["t"], "handler", int(m["d"]))
    if actor == "env":
        return Lane(actor, None, "other")
    return Lane(actor, actor, "user")


def _natural(s: str) -> list:
    return [int(x) if x.isdigit() else x for x in re.split(r"([0-9]+)", s)]


def lanes(g: nx.DiGraph) -> list[Lane]:
    """The trace's contexts, in column order: per thread (natural order) the
    thread, its handler frames 1..deepest (from the actors and the
    `T.depth` variable), its kernel side; then the others, `env` last."""
    threads: dict[str, dict[str, int]] = {}
    others: set[str] = set()
    for e, _, _ in steps(g):
        c = _context(e["actor"])
        if c.thread is None:
            others.add(c.name)
            continue
        t = threads.setdefault(c.thread, {"frames": 0, "kernel": 0})
        t["frames"] = max(t["frames"], c.frame)
        if c.kind == "kernel":
            t["kernel"] = 1
    for name, t in threads.items():
        for i in range(g.number_of_nodes()):
            d = g.nodes[i]["vars"].get(f"{name}.depth")
            if isinstance(d, int) and not isinstance(d, bool):
                t["frames"] = max(t["frames"], d)
    out: list[Lane] = []
    for name in sorted(threads, key=_natural):
        t = threads[name]
        out.append(Lane(name, name, "user"))
        out += [Lane(f"{name}.h{d}", name, "handler", d) for d in range(1, t["frames"] + 1)]
        if t["kernel"]:
            out.append(Lane(name + _KERNEL, name, "kernel"))
    out += [Lane(n, None, "other") for n in sorted(others - {"env"}, key=_natural)]
    if "env" in others:
        out.append(Lane("env", None, "other"))
    return out


def _lifelines(g: nx.DiGraph, ls: list[Lane]) -> list[list[bool]]:
    """live[i][k]: lane k's context exists in state i.  A handler frame is
    live while `T.depth` reaches it (without that variable: from its first
    step to its last), a kernel lane while `T.k` is not USER; a thread is
    always live; the environment never (it only acts)."""
    n = g.number_of_nodes()
    span: dict[str, tuple[int, int]] = {}
    for i, (e, _, _) in enumerate(steps(g), start=1):
        name = _context(e["actor"]).name
        lo, _ = span.get(name, (i, i))
        span[name] = (lo, i)
    live = []
    for i in range(n):
        vars_ = g.nodes[i]["vars"]
        row = []
        for lane in ls:
            if lane.kind == "user":
                row.append(True)
            elif lane.kind == "handler":
                d = vars_.get(f"{lane.thread}.depth")
                if isinstance(d, int) and not isinstance(d, bool):
                    row.append(d >= lane.frame)
                else:
                    lo, hi = span.get(lane.name, (n, -1))
                    row.append(lo <= i < hi)
            elif lane.kind == "kernel":
                k = vars_.get(f"{lane.thread}.k")
                row.append(isinstance(k, str) and k != "USER")
            else:
                row.append(False)
        live.append(row)
    return live


def _label(e: dict) -> str:
    """The step's label without a copy of its kernel function, which the
    text prints once, on its own line."""
    label = e["label"]
    kfn = e.get("kernel_fn")
    if kfn and f"[{kfn}]" in label:
        label = " ".join(label.replace(f"[{kfn}]", " ").split())
    if e.get("line"):  # a user instruction: its line in the program above
        label = f"L{e['line']} {label}"
    return label


def _source_note(e: dict) -> str:
    """`[kernel function; rule]` for a kernel step, `[rule]` for another
    step a rule decided; empty otherwise."""
    kfn = e.get("kernel_fn") if e["actor"].endswith(_KERNEL) else ""
    parts = [x for x in (kfn, e.get("rule")) if x]
    return f"[{'; '.join(parts)}]" if parts else ""


def _header(g: nx.DiGraph, width: int) -> list[str]:
    h = g.graph
    lines: list[str] = []
    lines += _wrap(f"rseqcheck {h.get('version', '')}: violation of {h.get('goal') or h.get('property')}", width, "", "  ")
    for key in ("title", "source"):
        if h.get(key):
            lines += _wrap(f"{key}: {h[key]}", width, "", "  ")
    lines += _wrap(f"spec: {h.get('spec', '')} (sha256 {h.get('spec_hash', '')})", width, "", "  ")
    for line in _model_lines(h):
        lines += _wrap(line, width, "", "  ")
    n = g.number_of_nodes() - 1
    what = [f"{n} step{'s' if n != 1 else ''}"]
    if h.get("shortest", True):
        what.append("shortest")
    if h.get("rank") and h.get("distinct"):
        what.append(f"counterexample {h['rank']} of {h['distinct']} distinct interleavings")
    if h.get("bound"):
        what.append(f"depth bound {h['bound']}")
    loop = lasso_loop(g)
    if loop is not None:  # a liveness counterexample: no shortest claim, the lasso's parts
        what = [what[0], _lasso_words(loop, n)] + [w for w in what[1:] if w != "shortest"]
    lines += _wrap("trace: " + what[0] + (f" ({'; '.join(what[1:])})" if what[1:] else ""), width, "", "  ")
    for note in h.get("notes") or []:
        lines += _wrap(note, width, "", "  ")
    return lines


def _model_lines(h: dict) -> list[str]:
    """The model the trace is of, as the text and DOT headers say it: the
    preset with the rule overrides in force (the spec's [rules] and any
    proposal's), then the proposal of `verify --preset/--rule` (or of
    `impact`) when there was one."""
    rules = h.get("rules") or {}
    rule_txt = ", ".join(f"{k}={v}" for k, v in rules.items()) or "none"
    out = [f"preset: {h.get('preset', '')}; overrides: {rule_txt}"]
    if isinstance(h.get("proposal"), dict):  # verify --preset/--rule, applied over the spec's own
        p = h["proposal"]
        flags = ([f"--preset {p['preset']}"] if p.get("preset") else []) + \
            [f"--rule {k}={v}" for k, v in (p.get("rules") or {}).items()]
        out.append("proposal (command line): " + " ".join(flags))
    return out


def lasso_loop(g: nx.DiGraph) -> int | None:
    """The index of the state a lasso's run goes on from forever (the last
    state equals it); None for a trace that ends at a bad state."""
    loop = g.graph.get("loop")
    return loop if isinstance(loop, int) and not isinstance(loop, bool) else None


def _lasso_words(loop: int, n: int) -> str:
    if loop == n:
        return f"a lasso: {n} steps, then no step is possible"
    return f"a lasso: {loop} steps, then a cycle of {n - loop} steps forever"


def _forever(g: nx.DiGraph, i: int) -> str | None:
    """The line that goes before step i (or after the last, i = n + 1)."""
    loop = lasso_loop(g)
    n = g.number_of_nodes() - 1
    if loop is None:
        return None
    if loop == n and i == n + 1:
        return "then forever: no step is possible (the run ends here)"
    if loop < n and i == loop + 1:
        return "then forever:"
    if loop < n and i == n + 1:
        return f"(back to the state after step {loop}: the cycle repeats)" if loop else \
            "(back to the first state: the cycle repeats)"
    return None


def _broken(g: nx.DiGraph, width: int) -> list[str]:
    """The closing lines: what the last step did, then which property that
    broke and what the property says, in words."""
    h = g.graph
    n = g.number_of_nodes() - 1
    lines: list[str] = []
    if n > 0 and lasso_loop(g) is None:
        e = g.edges[n - 1, n]
        label = _label(e)
        stop = "" if label.endswith((".", "!", "?")) else "."
        lines += _wrap(f"At step {n}, {e['actor']}: {label}{stop}", width, "", "  ", hyphens=False)
    doc = h.get("property_doc") or ""
    lines += _wrap(f"Broken: {h.get('goal') or h.get('property')}" + (f": {doc}" if doc else ""), width, "", "  ")
    return lines


def _columns(ls: list[Lane]) -> list[int]:
    """Each lane's column within the gutter: two apart, three between one
    thread's lanes and the next thread's (or the environment)."""
    cols, x = [], 0
    for k, lane in enumerate(ls):
        if k and lane.thread != ls[k - 1].thread:
            x += 1
        cols.append(x)
        x += 2
    return cols


def render_text(g: nx.DiGraph, width: int = WIDTH) -> str:
    lines = _header(g, width)
    lines.append("")
    prog = _program(g, width)
    if prog:
        lines += prog + [""]
    n = g.number_of_nodes() - 1
    ls = lanes(g)
    cols = _columns(ls)
    gutter = len(str(n)) + 2 + (cols[-1] + 1 if cols else 0) + 2
    if n and width - gutter >= _MIN_TEXT:
        lines += _steps_in_lanes(g, ls, cols, width)
    elif n:
        lines += _steps_inline(g, width)
    elif _forever(g, 1):  # the first state is where the run ends
        lines += _wrap(str(_forever(g, 1)), width)
    lines.append("")
    lines += _broken(g, width)
    legend = g.graph.get("legend")
    if isinstance(legend, dict) and legend:
        lines += ["", "Names in the trace:"]
        for name, text in legend.items():
            lines += _wrap(f"{name}: {text}", width, "  ", "    ", hyphens=False)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _program(g: nx.DiGraph, width: int) -> list[str]:
    """The spec's code blocks with their line numbers (traces saved before
    the header carried the program have none)."""
    prog = g.graph.get("program")
    if not isinstance(prog, list) or not prog:
        return []
    lw = max((len(str(ln)) for b in prog for ln, _ in b.get("lines", [])), default=1)
    out = ["The program (L<n>: line n of the spec):"]
    for block in prog:
        out.append(f"  {block.get('name', '')}")
        for ln, text in block.get("lines", []):
            out += _wrap(f"L{ln:<{lw}}  {text}", width, "    ", "    " + " " * (lw + 3), hyphens=False)
    return out


def _at_lines(ch: list[str], addresses: Any) -> list[str]:
    """`T0.ip1=SIGUSR1+0` as `T0.ip1=L21`: code addresses as spec lines."""
    if not isinstance(addresses, dict) or not addresses:
        return ch
    out = []
    for c in ch:
        name, _, value = c.partition("=")
        line = addresses.get(value) if _IP_VAR.search(name) else None
        out.append(f"{name}=L{line}" if line else c)
    return out


_IP_VAR = re.compile(r"\.ip[0-9]+$")


def _step_body(e: dict, before: dict, after: dict, addresses: Any = None) -> list[tuple[str, int, bool]]:
    """A step's text as (text, extra indent, break on hyphens) paragraphs."""
    out = [(_label(e), 0, True)]
    ch = _at_lines(changes(before, after, str(e.get("label", ""))), addresses)
    if ch:
        out.append(("  ".join(ch), 2, False))
    note = _source_note(e)
    if note:
        out.append((note, 2, False))
    return out


def _gutter(cols: list[int], marks: list[str]) -> str:
    row = [" "] * (cols[-1] + 1)
    for x, m in zip(cols, marks):
        row[x] = m
    return "".join(row)


def _steps_in_lanes(g: nx.DiGraph, ls: list[Lane], cols: list[int], width: int) -> list[str]:
    n = g.number_of_nodes() - 1
    num_w = len(str(n))
    lead = " " * (num_w + 2)
    lines = []
    for k, lane in enumerate(ls):  # the staggered header: lane k's name above its column
        head = _gutter(cols[: k + 1], ["|"] * k + [" "])[: cols[k]]
        lines.append((lead + head + lane.name)[:width])
    live = _lifelines(g, ls)
    col = {lane.name: k for k, lane in enumerate(ls)}
    text_at = len(lead) + cols[-1] + 1 + 2
    for i, (e, before, after) in enumerate(steps(g), start=1):
        fv = _forever(g, i)
        if fv:
            lines.append(fv)
        me = col[_context(e["actor"]).name]
        marks = ["*" if k == me else ("|" if live[i][k] else " ") for k in range(len(ls))]
        first = f"{i:>{num_w}}  " + _gutter(cols, marks)
        cont = lead + _gutter(cols, ["|" if x else " " for x in live[i]])
        body = []
        for text, extra, hy in _step_body(e, before, after, g.graph.get("addresses")):
            body += _wrap(text, width - text_at, " " * extra, " " * (extra + (1 if text.startswith("[") else 0)), hy)
        for j, line in enumerate(body):
            lines.append(f"{first if j == 0 else cont:<{text_at}}" + line)
    fv = _forever(g, n + 1)
    if fv:
        lines += _wrap(fv, width)
    return lines


def _steps_inline(g: nx.DiGraph, width: int) -> list[str]:
    """Too many contexts for lanes: each step names its actor."""
    n = g.number_of_nodes() - 1
    num_w = len(str(n))
    pad = " " * (num_w + 1)
    lines: list[str] = []
    for i, (e, before, after) in enumerate(steps(g), start=1):
        fv = _forever(g, i)
        if fv:
            lines.append(fv)
        lines += _wrap(f"{e['actor']}: {_label(e)}", width, f"{i:>{num_w}} ", pad)
        for text, extra, hy in _step_body(e, before, after, g.graph.get("addresses"))[1:]:
            ind = pad + " " * extra
            lines += _wrap(text, width, ind, ind + (" " if text.startswith("[") else ""), hy)
    fv = _forever(g, n + 1)
    if fv:
        lines += _wrap(fv, width)
    return lines


# ---------------------------------------------------------------------- ITF


def to_itf(g: nx.DiGraph) -> dict:
    """Apalache's Informal Trace Format: #meta, vars, states.  Values are
    JSON booleans, integers as {"#bigint": "N"} (as Apalache and the other
    ITF producers write them; plain JSON numbers are read too) and strings
    (enum names).  Our own keys (the action of each step, the header) go
    under #meta."""
    h = dict(g.graph)
    names = list(g.nodes[0]["vars"].keys()) if g.number_of_nodes() else []
    states = []
    for i in range(g.number_of_nodes()):
        meta: dict[str, Any] = {"index": i}
        if i > 0:
            e = g.edges[i - 1, i]
            meta.update(
                {"action": e["label"], "actor": e["actor"], "kernel_fn": e["kernel_fn"], "rule": e["rule"], "proc": e["proc"]}
            )
            if e.get("line"):
                meta["line"] = e["line"]
        st: dict[str, Any] = {"#meta": meta}
        st.update({k: _itf_value(v) for k, v in g.nodes[i]["vars"].items()})
        states.append(st)
    meta = {"format": "ITF", "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html", **h}
    out: dict[str, Any] = {"#meta": meta, "vars": names, "states": states}
    if lasso_loop(g) is not None:
        out["loop"] = h["loop"]  # ADR-015's trace field; #meta.loop carries it too
    return out


def _itf_value(v: Any) -> Any:
    return {"#bigint": str(v)} if isinstance(v, int) and not isinstance(v, bool) else v


def _from_itf_value(v: Any) -> Any:
    """{"#bigint": "N"} as an int; other values as they are."""
    if isinstance(v, dict):
        text = v.get("#bigint")
        if len(v) != 1 or not isinstance(text, str) or not re.fullmatch(r"-?[0-9]{1,30}", text):
            raise ValueError(f"not an ITF integer: {v!r}")
        return int(text)
    return v


def render_json(g: nx.DiGraph) -> str:
    return json.dumps(to_itf(g), indent=1, sort_keys=False) + "\n"


def from_itf(data: Any) -> nx.DiGraph:
    """The graph of a saved ITF trace; ValueError if it is not one of ours."""
    if not isinstance(data, dict) or not isinstance(data.get("#meta"), dict):
        raise ValueError("no top-level #meta object")
    names = data.get("vars")
    states = data.get("states")
    if not isinstance(names, list) or not isinstance(states, list) or not states:
        raise ValueError("needs a 'vars' list and a non-empty 'states' list")
    g = nx.DiGraph()  # not DiGraph(**meta): a key such as incoming_graph_data would be a constructor argument
    g.graph.update({k: v for k, v in data["#meta"].items() if k not in ("format", "format-description")})
    for i, st in enumerate(states):
        if not isinstance(st, dict):
            raise ValueError(f"state {i} is not an object")
        vars_ = {k: _from_itf_value(v) for k, v in st.items() if k != "#meta"}
        if set(vars_) != set(names):
            raise ValueError(f"state {i}: its variables differ from 'vars'")
        g.add_node(i, index=i, vars=vars_)
        if i > 0:
            m = st.get("#meta")
            if not isinstance(m, dict) or "action" not in m or "actor" not in m:
                raise ValueError(f"state {i}: #meta lacks the action and actor that led to it")
            g.add_edge(
                i - 1,
                i,
                label=m["action"],
                actor=m["actor"],
                kernel_fn=m.get("kernel_fn", ""),
                rule=m.get("rule", ""),
                proc=m.get("proc", ""),
            )
            if isinstance(m.get("line"), int):
                g.edges[i - 1, i]["line"] = m["line"]
    return g


# ---------------------------------------------------------------------- DOT


def _dot_str(s: str) -> str:
    return dot_string(str(s))


def render_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT: one box per state listing what changed in it (the full
    first state), one edge per step labelled `actor: action`."""
    h = g.graph
    n = g.number_of_nodes()
    out = ["digraph counterexample {"]
    title = f"violation of {h.get('goal') or h.get('property', '')}\nspec: {h.get('spec', '')} (sha256 {h.get('spec_hash', '')})\n"
    title += "".join(line + "\n" for line in _model_lines(h))  # the rules and the proposal, as the text says them
    title += f"rseqcheck {h.get('version', '')}\n"
    if h.get("rank") and h.get("distinct"):
        title += f"counterexample {h['rank']} of {h['distinct']} distinct interleavings\n"
    out.append(f"  label={_dot_str(title)};")
    out.append("  labelloc=t;")
    out.append('  node [shape=box, fontname="monospace", fontsize=10];')
    out.append('  edge [fontname="monospace", fontsize=10];')
    for i in range(n):
        vars_ = g.nodes[i]["vars"]
        if i == 0:
            body = [f"{k}={_fmt(v)}" for k, v in vars_.items()]
        else:
            body = changes(g.nodes[i - 1]["vars"], vars_)
        body = _at_lines(body, h.get("addresses"))  # code addresses as spec lines, as the text has them
        text = f"state {i}\n" + "".join(x + "\n" for x in body)
        attrs = [f"label={_dot_str(text)}"]
        if i == 0:
            attrs.append("penwidth=2")
        if i == n - 1 and lasso_loop(g) is None:
            attrs.append('color=red, fontcolor=red, penwidth=2')
        elif i == lasso_loop(g):
            attrs.append('color=red, fontcolor=red, penwidth=2, peripheries=2')  # the cycle's head
        out.append(f"  s{i} [{', '.join(attrs)}];")
    for i in range(1, n):
        e = g.edges[i - 1, i]
        label = f"{i}. {e['actor']}: " + (f"L{e['line']} {e['label']}" if e.get("line") else e["label"])
        if e.get("rule"):
            label += f"\n[{e['rule']}]"
        out.append(f"  s{i - 1} -> s{i} [label={_dot_str(label + chr(10))}];")
    loop = lasso_loop(g)
    if loop is not None:  # the back edge: the last state is state `loop` again
        text = "no step is possible: stays here forever" if loop == n - 1 else f"back edge: = state {loop}, forever"
        out.append(f"  s{n - 1} -> s{loop} [style=dashed, color=red, constraint=false, label={_dot_str(text + chr(10))}];")
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ GraphML

_GML_NS = "http://graphml.graphdrawing.org/xmlns"

# (id, for, type, default): SV-COMP witness keys first, then ours.
_GML_KEYS: tuple[tuple[str, str, str, str | None], ...] = (
    ("witness-type", "graph", "string", None),
    ("producer", "graph", "string", None),
    ("specification", "graph", "string", None),
    ("programfile", "graph", "string", None),
    ("programhash", "graph", "string", None),
    ("architecture", "graph", "string", None),
    ("sourcecodelang", "graph", "string", None),
    ("preset", "graph", "string", None),
    ("rules", "graph", "string", None),
    ("proposal", "graph", "string", None),
    ("title", "graph", "string", None),
    ("source", "graph", "string", None),
    ("engine", "graph", "string", None),
    ("bound", "graph", "int", None),
    ("shortest", "graph", "boolean", None),
    ("entry", "node", "boolean", "false"),
    ("violation", "node", "boolean", "false"),
    ("cyclehead", "node", "boolean", "false"),  # SV-COMP's lasso witnesses: where the cycle starts
    ("backedge", "edge", "boolean", "false"),
    ("index", "node", "int", None),
    ("state", "node", "string", None),
    ("changes", "node", "string", None),
    ("threadId", "edge", "string", None),
    ("actor", "edge", "string", None),
    ("action", "edge", "string", None),
    ("kernel_fn", "edge", "string", None),
    ("rule", "edge", "string", None),
    ("startline", "edge", "int", None),
)


def _gml_val(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def render_graphml(g: nx.DiGraph) -> str:
    """GraphML in the style of an SV-COMP violation witness: graph data
    (witness-type, producer, specification, programfile, programhash), node
    `entry` on the first state and `violation` on the last, edges carrying
    `threadId` (the thread), `actor` (the context) and `action` (the label).
    Each node's full state is a JSON object in its `state` data.  Loads with
    networkx.read_graphml."""
    h = g.graph
    ET.register_namespace("", _GML_NS)
    root = ET.Element(f"{{{_GML_NS}}}graphml")
    for kid, kfor, ktype, default in _GML_KEYS:
        if kid in ("cyclehead", "backedge") and lasso_loop(g) is None:
            continue  # declared for lassos only: other witnesses stay as they were
        k = ET.SubElement(root, f"{{{_GML_NS}}}key", {"id": kid, "for": kfor, "attr.name": kid, "attr.type": ktype})
        if default is not None:
            ET.SubElement(k, f"{{{_GML_NS}}}default").text = default
    graph = ET.SubElement(root, f"{{{_GML_NS}}}graph", {"edgedefault": "directed"})

    def data(parent: ET.Element, key: str, value: Any) -> None:
        ET.SubElement(parent, f"{{{_GML_NS}}}data", {"key": key}).text = _gml_val(value)

    graph_data = {
        "witness-type": "violation_witness",
        "producer": f"rseqcheck {h.get('version', '')}",
        "specification": h.get("property", ""),
        "programfile": h.get("spec", ""),
        "programhash": h.get("spec_sha256") or h.get("spec_hash", ""),
        "architecture": "64bit",  # the model is of x86-64 (arch/x86 signal frames, syscall entry)
        "sourcecodelang": "rseqcheck-spec-v0",
        "preset": h.get("preset", ""),
        "rules": json.dumps(h.get("rules") or {}, sort_keys=True),
        "proposal": json.dumps(h["proposal"], sort_keys=True) if "proposal" in h else "",
        "title": h.get("title", ""),
        "source": h.get("source", ""),
        "engine": h.get("engine", ""),
        "bound": h.get("bound"),
        "shortest": h.get("shortest"),
    }
    for key, value in graph_data.items():
        if value is not None and value != "":
            data(graph, key, value)
    n = g.number_of_nodes()
    for i in range(n):
        node = ET.SubElement(graph, f"{{{_GML_NS}}}node", {"id": f"s{i}"})
        if i == 0:
            data(node, "entry", True)
        if i == n - 1 and lasso_loop(g) is None:
            data(node, "violation", True)
        if i == lasso_loop(g):
            data(node, "cyclehead", True)
        data(node, "index", i)
        vars_ = g.nodes[i]["vars"]
        data(node, "state", json.dumps(vars_, separators=(",", ":")))
        if i > 0:
            data(node, "changes", "  ".join(changes(g.nodes[i - 1]["vars"], vars_)))
    for i in range(1, n):
        e = g.edges[i - 1, i]
        edge = ET.SubElement(graph, f"{{{_GML_NS}}}edge", {"id": f"e{i}", "source": f"s{i - 1}", "target": f"s{i}"})
        data(edge, "threadId", e.get("proc", ""))
        data(edge, "actor", e["actor"])
        data(edge, "action", e["label"])
        for key in ("kernel_fn", "rule"):
            if e.get(key):
                data(edge, key, e[key])
        if e.get("line"):
            data(edge, "startline", e["line"])
    loop = lasso_loop(g)
    if loop is not None:  # the last state is state `loop` again: the run goes on from there forever
        edge = ET.SubElement(graph, f"{{{_GML_NS}}}edge", {"id": "back", "source": f"s{n - 1}", "target": f"s{loop}"})
        data(edge, "backedge", True)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_clean(ET.tostring(root, encoding="unicode")) + "\n"


def render(g: nx.DiGraph, fmt: str) -> str:
    return {"text": render_text, "json": render_json, "dot": render_dot, "graphml": render_graphml}[fmt](g)
