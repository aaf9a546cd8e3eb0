"""Check one spec: load it, build its IR, run an engine, compare the verdict
with the spec's `expect`, and keep the counterexample graph."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import networkx as nx

from checker import __version__
from checker.explicit import SearchResult, Stats, bfs
from checker.trace import build_graph, render_json, render_text
from model.build import build_system
from model.errors import SpecError
from model.ir import ModelError, System
from model.properties import PROPERTIES
from model.spec import Spec, load_spec

ENGINES = ("explicit",)


@dataclass
class Outcome:
    path: str
    spec: Spec | None = None
    result: SearchResult | None = None
    graph: nx.DiGraph | None = None
    error: str | None = None  # spec or model error, already `file:line: msg`
    vacuous: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        assert self.result is not None
        return self.result.verdict

    @property
    def expected(self) -> str | None:
        return self.spec.expect if self.spec else None

    @property
    def ok(self) -> bool:
        """The verdict is the one the spec expects (no expect: holds)."""
        if self.error or self.verdict == "unknown":
            return False
        return self.verdict == (self.expected or "holds")

    def describe(self) -> str:
        r = self.result
        if self.error:
            return self.error
        assert r is not None
        if r.verdict == "holds":
            if r.exhausted:
                return f"holds (state space exhausted at depth {r.stats.depth})"
            return f"holds up to depth {r.bound}"
        if r.verdict == "violation":
            return f"violation of {r.prop} at depth {len(r.trace) - 1}"
        return f"unknown: {r.reason}"

    def record(self) -> dict[str, Any]:
        r = self.result
        out: dict[str, Any] = {
            "spec": self.path,
            "tool_version": __version__,
            "verdict": self.verdict,
            "expected": self.expected,
            "as_expected": self.ok,
        }
        if self.spec:
            out.update(
                title=self.spec.title,
                preset=self.spec.preset,
                rules=self.spec.rules,
                spec_hash=self.spec.hash,
                properties=list(self.spec.properties),
            )
        if self.error:
            out["error"] = self.error
        if r:
            out.update(
                engine=r.engine,
                summary=self.describe(),
                property=r.prop,
                states=r.stats.states,
                transitions=r.stats.transitions,
                depth=r.stats.depth,
                bound=r.bound,
                exhausted=r.exhausted,
                seconds=round(r.stats.seconds, 3),
                states_per_second=round(r.stats.rate),
                reason=r.reason or None,
                trace_steps=len(r.trace) - 1 if r.trace else None,
                shortest=r.shortest if r.trace else None,
                vacuous=self.vacuous,
                counterexample_files=self.files,
            )
        return out


def check_spec(
    path: str,
    depth: int | None = None,
    engine: str = "explicit",
    por: bool = True,
    timeout: float | None = None,
    progress: Callable[[Stats], None] | None = None,
) -> Outcome:
    out = Outcome(path)
    try:
        spec = load_spec(path)
        out.spec = spec
        system = build_system(spec)
    except SpecError as e:
        out.error = str(e)
        return out
    except ModelError as e:
        out.error = f"{path}: model error: {e}"
        return out
    bound = depth if depth is not None else spec.depth
    try:
        res = bfs(system, bound, por=por, timeout=timeout, progress=progress)
    except ModelError as e:
        out.error = f"{path}: model error: {e}"
        return out
    out.result = res
    if res.verdict == "holds":
        tags = set()
        for a in res.fired:
            tags |= system.actions[a].tags
        for p in system.properties:
            if p.trigger_tag and p.trigger_tag not in tags:
                out.vacuous.append(p.name)
    if res.verdict == "violation":
        out.graph = trace_graph(system, spec, res)
    return out


def trace_graph(system: System, spec: Spec, res: SearchResult) -> nx.DiGraph:
    header = {
        "tool": "rseqcheck",
        "version": __version__,
        "spec": spec.path,
        "spec_hash": spec.hash,
        "title": spec.title,
        "source": spec.source,
        "preset": spec.preset,
        "rules": dict(spec.rules),
        "property": res.prop,
        "property_doc": PROPERTIES[res.prop].doc if res.prop in PROPERTIES else "",
        "engine": res.engine,
        "shortest": res.shortest,
        "bound": res.bound,
    }
    return build_graph(system, res.trace, header)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_counterexample(out: Outcome, folder: Path) -> list[str]:
    assert out.graph is not None and out.spec is not None
    stem = out.spec.name
    files = []
    for ext, text in (("txt", render_text(out.graph)), ("json", render_json(out.graph))):
        p = folder / f"{stem}.{ext}"
        write_atomic(p, text)
        files.append(str(p))
    out.files = files
    return files
