"""Counterexample traces: a NetworkX DiGraph built from an engine's path, and
the renderers that read only that graph (text for email, ITF JSON).

Graph: nodes 0..n are states (attribute `vars`: {name: value as shown},
`index`); edges i -> i+1 are actions (attributes `label`, `actor`,
`kernel_fn`, `rule`).  Graph attributes carry the header (spec, property,
preset, rules, tool version, spec hash).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import networkx as nx

from model.ir import System

WIDTH = 72


def build_graph(system: System, path: list[tuple[int, tuple]], header: dict[str, Any]) -> nx.DiGraph:
    g = nx.DiGraph(**header)
    for i, (a, state) in enumerate(path):
        shown = {v.name: _show(v, x) for v, x in zip(system.vars, state)}
        g.add_node(i, index=i, vars=shown)
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


def _show(v, x: int):
    if v.type.is_bool:
        return bool(x)
    if v.type.names is not None:
        return v.type.fmt(int(x))
    return int(x)


def steps(g: nx.DiGraph) -> list[tuple[dict, dict, dict]]:
    """(edge attrs, state before, state after) for each step, in order."""
    n = g.number_of_nodes()
    return [(g.edges[i - 1, i], g.nodes[i - 1]["vars"], g.nodes[i]["vars"]) for i in range(1, n)]


def changes(before: dict, after: dict) -> list[str]:
    out = []
    for k, v in after.items():
        if before.get(k) != v:
            out.append(f"{k}={_fmt(v)}")
    return out


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def render_text(g: nx.DiGraph, width: int = WIDTH) -> str:
    h = g.graph
    lines = []
    verdict = f"violation of {h.get('property')}"
    lines.append(f"rseqcheck {h.get('version', '')}: {verdict}")
    for key in ("title", "source"):
        if h.get(key):
            lines += textwrap.wrap(f"{key}: {h[key]}", width, subsequent_indent="  ")
    lines.append(f"spec: {h.get('spec', '')} (sha256 {h.get('spec_hash', '')})")
    rules = h.get("rules") or {}
    rule_txt = ", ".join(f"{k}={v}" for k, v in rules.items()) or "none"
    lines += textwrap.wrap(f"preset: {h.get('preset', '')}; overrides: {rule_txt}", width, subsequent_indent="  ")
    n = g.number_of_nodes() - 1
    lines.append(f"trace: {n} steps{' (shortest)' if h.get('shortest', True) else ''}")
    lines.append("")
    actor_w = max([len(e["actor"]) for e, _, _ in steps(g)] + [5])
    num_w = len(str(n))
    lead = num_w + 1 + actor_w + 1
    for i, (e, before, after) in enumerate(steps(g), start=1):
        head = f"{i:>{num_w}} {e['actor']:<{actor_w}} "
        body = textwrap.wrap(e["label"], width - lead) or [""]
        lines.append(head + body[0])
        lines += [" " * lead + x for x in body[1:]]
        ch = changes(before, after)
        if ch:
            lines += textwrap.wrap("  ".join(ch), width - lead - 2, initial_indent=" " * (lead + 2),
                                   subsequent_indent=" " * (lead + 2), break_on_hyphens=False)
        if e.get("kernel_fn") and not e["actor"] in ("env",) and e["actor"].endswith("kernel"):
            lines += textwrap.wrap(f"[{e['kernel_fn']}{'; ' + e['rule'] if e.get('rule') else ''}]",
                                   width - lead - 2, initial_indent=" " * (lead + 2), subsequent_indent=" " * (lead + 3),
                                   break_long_words=False, break_on_hyphens=False)
    lines.append("")
    lines += textwrap.wrap(f"Broken: {h.get('property')}: {h.get('property_doc', '')}", width, subsequent_indent="  ")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def to_itf(g: nx.DiGraph) -> dict:
    """Apalache's Informal Trace Format: #meta, vars, states.  Our own keys
    (action of each step, header) go under #meta."""
    h = dict(g.graph)
    names = list(g.nodes[0]["vars"].keys()) if g.number_of_nodes() else []
    states = []
    for i in range(g.number_of_nodes()):
        meta: dict[str, Any] = {"index": i}
        if i > 0:
            e = g.edges[i - 1, i]
            meta.update({"action": e["label"], "actor": e["actor"], "kernel_fn": e["kernel_fn"], "rule": e["rule"], "proc": e["proc"]})
        st = {"#meta": meta}
        st.update(g.nodes[i]["vars"])
        states.append(st)
    return {"#meta": {"format": "ITF", "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html", **h}, "vars": names, "states": states}


def render_json(g: nx.DiGraph) -> str:
    return json.dumps(to_itf(g), indent=1, sort_keys=False) + "\n"


def from_itf(data: dict) -> nx.DiGraph:
    g = nx.DiGraph(**{k: v for k, v in data["#meta"].items() if k not in ("format", "format-description")})
    for i, st in enumerate(data["states"]):
        vars_ = {k: v for k, v in st.items() if k != "#meta"}
        g.add_node(i, index=i, vars=vars_)
        if i > 0:
            m = st["#meta"]
            g.add_edge(i - 1, i, label=m["action"], actor=m["actor"], kernel_fn=m.get("kernel_fn", ""), rule=m.get("rule", ""), proc=m.get("proc", ""))
    return g
