"""Check one spec: load it, build its IR, run an engine, compare the verdict
with the spec's `expect`, and keep the counterexample graph."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
from rseqcheck.checker import __version__
from rseqcheck.checker.caveats import Caveat, caveats
from rseqcheck.checker.engines.bitstate import NOT_PROOF
from rseqcheck.checker.engines.bitstate import bitstate as bit_search
from rseqcheck.checker.engines.explicit import Distinct, SearchResult, Stats, bfs, distinct_counterexamples
from rseqcheck.checker.engines.workers import bfs_workers
from rseqcheck.checker.limits import check_size
from rseqcheck.checker.outputs.escape import xml_clean
from rseqcheck.checker.outputs.trace import build_graph, changes, render
from rseqcheck.checker.proposal import Proposal
from rseqcheck.model import glossary
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import ModelError, System
from rseqcheck.model.properties import PROPERTIES
from rseqcheck.model.spec import Spec, load_spec

ENGINES = ("explicit", "bmc", "induction")


@dataclass
class Outcome:
    path: str
    spec: Spec | None = None
    system: System | None = None  # the spec's IR, as the engine checked it
    result: SearchResult | None = None
    graph: nx.DiGraph | None = None
    error: str | None = None  # spec or model error, already `file:line: msg`
    vacuous: list[str] = field(default_factory=list)
    warnings: list[Caveat] = field(default_factory=list)  # checker/caveats.py; --strict: exit 5
    files: list[str] = field(default_factory=list)
    disagreement: str | None = None  # --engine all: how the engines differ
    engines: dict[str, str] = field(default_factory=dict)  # --engine all: each engine's verdict
    asked: int = 1  # --max-counterexamples
    distinct: Distinct | None = None  # when more than one counterexample was asked for
    more: list[nx.DiGraph] = field(default_factory=list)  # counterexamples 2, 3, ... (shortest first)
    outcomes_check: tuple[bool | None, str] = (None, "")  # [outcomes]: (holds? None: unknown or none, one line)
    proposal: Proposal | None = None  # verify --preset/--rule, applied over the spec's own

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        assert self.result is not None
        return self.result.verdict

    @property
    def interrupted(self) -> bool:
        """A search stopped by Ctrl-C (the engines report "interrupted"
        instead of raising): the run must stop here."""
        return bool((self.result and self.result.reason == "interrupted")
                    or (self.distinct and self.distinct.reason == "interrupted"))

    @property
    def expected(self) -> str | None:
        return self.spec.expect if self.spec else None

    @property
    def ok(self) -> bool:
        """The verdict is the one the spec expects (no expect: holds)."""
        if self.error or self.verdict == "unknown":
            return False
        if self.outcomes_check[0] is not None and self.outcomes_check[0] != (self.outcomes_expected == "holds"):
            return False
        return self.verdict == (self.expected or "holds")

    @property
    def outcomes_expected(self) -> str:
        """What the spec expects of its [outcomes] condition: holds or fails."""
        oc = self.spec.outcomes if self.spec else None
        return oc.expect if oc else "holds"

    def describe(self) -> str:
        r = self.result
        if self.error:
            return self.error
        assert r is not None
        if r.verdict == "holds":
            if r.engine == "induction":
                return f"holds ({r.reason})" if r.exhausted else f"holds up to depth {r.bound} ({r.reason})"
            if r.exhausted and r.engine == "bmc":
                return f"holds (no execution is {r.bound} steps long)"
            if r.exhausted:
                return f"holds (state space exhausted at depth {r.stats.depth})"
            return f"holds up to depth {r.bound}"
        if r.verdict == NOT_PROOF:
            deep = f"no state left at depth {r.stats.depth}" if r.exhausted else f"up to depth {r.bound}"
            return f"{NOT_PROOF} (bitstate, not a proof; {deep})"
        if r.verdict == "violation" and r.goal is not None:
            return lasso_summary(r)
        if r.verdict == "violation":
            return f"violation of {r.prop} at depth {len(r.trace) - 1}"
        return f"unknown: {r.reason} (explored to depth {r.stats.depth})"

    def property_verdicts(self) -> list[tuple[str, str]]:
        """(property, verdict) for each property the spec checks.  The search
        stops at the first violation, so the others stay "not reached"."""
        props = list(self.spec.properties) if self.spec else []
        if self.error:
            return [(p, "error") for p in props]
        r = self.result
        assert r is not None
        oc = []
        if self.outcomes_check[1]:
            oc = [("[outcomes]", {True: "holds", False: "fails", None: "unknown"}[self.outcomes_check[0]])]
        if r.verdict == "violation":
            return [(p, "violation" if p == r.prop else "not reached") for p in props] + (
                [(r.prop, "violation")] if r.prop not in props else []  # e.g. an `assert` in the code
            ) + oc
        return [(p, r.verdict) for p in props] + oc

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
        if self.proposal:
            out["proposal"] = self.proposal.record()
        if self.error:
            out["error"] = self.error
        out["warnings"] = [w.record() for w in self.warnings]
        out["property_verdicts"] = dict(self.property_verdicts())
        if self.engines or self.disagreement:
            out.update(engines=self.engines, disagreement=self.disagreement)
        if self.outcomes_check[1]:
            out["outcomes_check"] = {"holds": self.outcomes_check[0], "expected": self.outcomes_expected,
                                     "message": self.outcomes_check[1]}
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
                complete=r.verdict == "violation" or (r.verdict == "holds" and r.exhausted),
                counterexample_files=self.files,
            )
        if r and r.bitstate is not None:
            out["bitstate"] = dict(r.bitstate)
        if r and (r.goal is not None or r.notes):  # liveness: the lasso and what the verdict assumed
            out.update(goal=r.goal, loop=r.loop, notes=list(r.notes))
        if self.distinct is not None and r and r.verdict == "violation":
            d = self.distinct
            out["distinct_counterexamples"] = {
                "asked": self.asked,
                "found": len(d.traces),
                "complete": d.complete,
                "steps": [len(t) - 1 for _, t in d.traces],
                "interleaving": "sequence of contexts (actors) of the steps",
                "stopped": d.reason or None,
            }
        return out

    def distinct_summary(self) -> str | None:
        """One line on --max-counterexamples: how many distinct interleavings
        were found and whether that is all of them within the bound."""
        d = self.distinct
        if d is None or not d.traces:
            return None
        k = len(d.traces)
        lens = sorted({len(t) - 1 for _, t in d.traces})
        steps = f"{lens[0]}" if len(lens) == 1 else f"{lens[0]}-{lens[-1]}"
        what = f"{k} distinct counterexample{'s' if k != 1 else ''} (interleavings), {steps} steps"
        if d.complete:
            return what + f"; all there are within depth {d.result.bound}"
        if d.reason:
            return what + f"; search stopped early ({d.reason}), there may be more"
        return what + f"; the first {self.asked} asked for, there may be more"


def lasso_summary(r: SearchResult) -> str:
    """A liveness violation in one line: its prefix and cycle."""
    if not r.trace:
        return f"violation of {r.goal}: no reachable state satisfies it"
    assert r.loop is not None
    n = len(r.trace) - 1
    if r.loop == n:
        return f"violation of {r.goal}: {n} steps, then no step forever"
    return f"violation of {r.goal}: {r.loop} steps, then a cycle of {n - r.loop} steps forever"


@dataclass(frozen=True)
class SpecSystem:
    """A picklable factory of a spec's system, built where it is called
    (a swarm worker: checker/engines/swarm.py, which keeps what it built per
    factory).  `spec_hash`: the spec's, so that a long-lived worker does not
    reuse a system built from an older version of the file, nor build one
    from a different file at the same path on another machine."""

    path: str
    spec_hash: str = ""

    def __call__(self) -> System:
        spec = load_spec(self.path)
        if self.spec_hash and spec.hash != self.spec_hash:
            raise ModelError(f"{self.path} here is not the spec asked for (sha256 {spec.hash}, "
                             f"not {self.spec_hash})")
        return build_system(spec)


def check_spec(
    path: str | Spec,
    depth: int | None = None,
    engine: str = "explicit",
    por: bool = True,
    timeout: float | None = None,
    progress: Callable[[Stats], None] | None = None,
    max_counterexamples: int = 1,
    max_states: int | None = None,
    por_frozen: bool = False,
    symmetry: bool = False,
    proposal: Proposal | None = None,
    bitstate: tuple[int, int, int] | None = None,
    workers: int = 1,
) -> Outcome:
    """max_counterexamples > 1 (explicit engine): up to that many
    counterexamples with different interleavings, shortest first, searched
    without partial-order reduction; the symbolic engines ignore it.
    por_frozen: the explicit engine's state-dependent independence;
    symmetry: its thread symmetry reduction (checker/engines/explicit.py:bfs).
    proposal: a preset and rule choices that replace the spec's own
    (checker/proposal.py).  `path` may be a spec already loaded.
    bitstate: (bits, k, window) for a bitstate search
    (checker/engines/bitstate.py) of the invariants, explicit engine.
    workers: processes for the explicit engine's plain search
    (checker/engines/workers.py)."""
    given = path if isinstance(path, Spec) else None
    path = given.path if given else str(path)
    out = Outcome(path, asked=max_counterexamples, proposal=proposal or None)
    try:
        spec = given or load_spec(path)
        if proposal:
            spec = proposal.apply(spec)
        out.spec = spec
        check_size(spec)  # refuse what cannot be built before building it
        system = out.system = build_system(spec)
        if spec.outcomes is not None:  # an unknown name in [outcomes] is a spec error, for every engine
            from rseqcheck.checker.outcomes import projection_for, validate_condition

            validate_condition(spec, set(projection_for(system).observe))
    except SpecError as e:
        out.error = str(e)
        return out
    except ModelError as e:
        out.error = model_error(path, e, out.spec)
        return out
    bound = depth if depth is not None else spec.depth
    if system.goals and engine == "induction":
        names = ", ".join(dict.fromkeys(g.name for g in system.goals))
        line = spec.lines.get(("check", "properties"))
        out.error = str(SpecError(path, line, f"the induction engine does not prove liveness or reachability "
                                  f"({names}); use --engine explicit or bmc"))
        return out
    if bitstate and system.goals:
        names = ", ".join(dict.fromkeys(g.name for g in system.goals))
        line = spec.lines.get(("check", "properties"))
        out.error = str(SpecError(path, line, f"--bitstate checks invariants only, not liveness or "
                                  f"reachability ({names})"))
        return out
    try:
        if bitstate:
            bits, k, window = bitstate
            res = bit_search(system, bound, bits, k, window, timeout=timeout, max_states=max_states,
                             progress=progress)
        elif system.goals:
            res = _check_with_goals(system, spec, bound, por, timeout, progress, max_states, por_frozen, engine)
        elif engine == "explicit" and max_counterexamples > 1:
            out.distinct = distinct_counterexamples(system, bound, max_counterexamples, timeout=timeout,
                                                    max_states=max_states, progress=progress)
            res = out.distinct.result
        elif engine == "explicit" and workers > 1:
            res = bfs_workers(system, bound, workers, por=por, timeout=timeout, max_states=max_states,
                              progress=progress, por_frozen=por_frozen, symmetry=symmetry)
        elif engine == "explicit":
            res = bfs(system, bound, por=por, timeout=timeout, max_states=max_states, progress=progress,
                      por_frozen=por_frozen, symmetry=symmetry)
        else:
            from rseqcheck.checker.engines import symbolic

            run = symbolic.bmc if engine == "bmc" else symbolic.kinduction
            res = run(system, bound, timeout=timeout, progress=progress)
    except ModelError as e:
        out.error = model_error(path, e, spec)
        return out
    out.result = res
    if bitstate and spec.outcomes is not None:  # an exhaustive search: not what --bitstate is for
        res.notes.append("[outcomes] not checked: --bitstate checks the invariants only")
    elif res.verdict != "unknown" and engine == "explicit":
        # the herd7-style [outcomes] condition, on the outcomes the model allows
        from rseqcheck.checker.outcomes import verify_outcomes

        out.outcomes_check = verify_outcomes(spec, system, timeout=timeout)
    elif res.verdict != "unknown":  # the same, as an invariant on final states (checker/outcomes_smt.py)
        from rseqcheck.checker.outcomes_smt import verify_outcomes_smt

        out.outcomes_check = verify_outcomes_smt(spec, system, engine, bound, timeout=timeout)
    if res.verdict == "holds" and engine != "induction":  # induction's coverage stops below its k
        tags = set()
        for a in res.fired:
            tags |= system.actions[a].tags
        for p in system.properties:
            if p.trigger_tag and p.trigger_tag not in tags:
                out.vacuous.append(p.name)
        for g in system.goals if res.engine == "explicit" else []:  # a progress property whose trigger never fired
            info = PROPERTIES.get(g.name)
            if info is not None and info.trigger and info.trigger not in tags and g.name not in out.vacuous:
                out.vacuous.append(g.name)
    out.warnings = caveats(spec, system, res, out.vacuous)
    said = {"proposal": proposal.record()} if proposal else {}  # in the trace's header, for replay
    if res.verdict == "violation" and res.trace:  # a `sometimes` violation has no trace
        out.graph = trace_graph(system, spec, res, **said)
    if out.distinct is not None and out.graph is not None:
        d = out.distinct
        k = len(d.traces)
        out.graph.graph.update(rank=1, distinct=k)
        for i, (prop, trace) in enumerate(d.traces[1:], start=2):
            other = replace(res, prop=prop, trace=trace, shortest=len(trace) == len(res.trace))
            out.more.append(trace_graph(system, spec, other, rank=i, distinct=k, **said))
    return out


def _check_with_goals(system: System, spec: Spec, bound: int, por: bool, timeout: float | None,
                      progress: Callable[[Stats], None] | None, max_states: int | None,
                      por_frozen: bool, engine: str = "explicit") -> SearchResult:
    """The invariants first (bfs with its reduction, or bmc), then the
    liveness and reachability goals: on the full reachable graph
    (checker/engines/liveness.py) or by a bounded lasso search with Z3
    (checker/engines/symbolic_liveness.py)."""
    from rseqcheck.model.progress import describe

    safety = None
    if system.properties:
        if engine == "bmc":
            from rseqcheck.checker.engines import symbolic

            safety = symbolic.bmc(system, bound, timeout=timeout, progress=progress)
        else:
            safety = bfs(system, bound, por=por, timeout=timeout, max_states=max_states, progress=progress,
                         por_frozen=por_frozen)
        if safety.verdict != "holds":
            return safety
    if engine == "bmc":
        from rseqcheck.checker.engines.symbolic_liveness import lasso_bmc

        res = lasso_bmc(system, bound, timeout=timeout, progress=progress)
    else:
        from rseqcheck.checker.engines.liveness import check_goals

        res = check_goals(system, bound, timeout=timeout, progress=progress, max_states=max_states)
    res.notes.append("fairness: " + describe(spec.fairness))
    if safety is not None:
        res.fired |= safety.fired
        res.exhausted = res.exhausted and safety.exhausted
    return res


def model_error(path: str, e: ModelError, spec: Spec | None) -> str:
    """`file:line: model error: ...`: the line of the instruction whose
    action the error names, else of the first thread."""
    line = None
    m = re.search(r"action (?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")", str(e))
    if spec is not None:
        label = (m.group(1) or m.group(2) or "") if m else ""
        segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
        hits = [ins.line for seg in segs for ins in seg.instrs if label and ins.text and label.startswith(ins.text)]
        line = hits[0] if hits else (spec.threads[0].line if spec.threads else None)
    return str(SpecError(path, line, f"model error: {e}"))


def trace_graph(system: System, spec: Spec, res: SearchResult, **extra: Any) -> nx.DiGraph:
    """The counterexample's graph; `extra` (rank, distinct: counterexample
    `rank` of `distinct` found) joins the header."""
    header = {
        "tool": "rseqcheck",
        "version": __version__,
        "spec": _portable(spec.path),
        "spec_hash": spec.hash,
        "spec_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),  # GraphML programhash (SV-COMP)
        "title": spec.title,
        "source": spec.source,
        "preset": spec.preset,
        "rules": dict(spec.rules),
        "property": res.prop,
        "property_doc": PROPERTIES[res.prop].doc if res.prop in PROPERTIES else "",
        "engine": res.engine,
        "shortest": res.shortest,
        "bound": res.bound,
        **extra,
    }
    if res.goal is not None:  # a lasso (checker/engines/liveness.py)
        goal = next(g for g in system.goals if g.key == res.goal)
        header.update(goal=res.goal, loop=res.loop, property_doc=goal.doc, notes=list(res.notes))
    g = build_graph(system, res.trace, header)
    b = system.meta.get("builder")
    if b is not None:  # the program and the names in words: the text reads without the repository
        _explain(g, b)
    return g


def _explain(g: nx.DiGraph, b: Any) -> None:
    """Add the program, the line of each code address, the line of each
    user step's instruction, and a legend of the names the trace shows."""
    addr = glossary.addresses(b)
    g.graph.update(program=glossary.program(b), addresses=addr)
    threads = glossary.thread_names(b)
    phases: dict[str, set[str]] = {}
    shown: list[str] = []
    for i in range(1, g.number_of_nodes()):
        e, before, after = g.edges[i - 1, i], g.nodes[i - 1]["vars"], g.nodes[i]["vars"]
        ctx = e["actor"]
        if not ctx.endswith(":kernel") and ctx != "env":
            t, _, h = ctx.partition(".h")
            line = addr.get(str(before.get(f"{t}.ip{h or 0}")))
            if line:
                e["line"] = line
        for c in changes(before, after, e["label"]):
            name, _, value = c.partition("=")
            if name not in shown:
                shown.append(name)
            if name.endswith(".k"):
                phases.setdefault(name, set()).add(value)
    legend = {}
    for name in shown:
        text = glossary.describe(name, threads)
        if text is None:
            continue
        if name in phases:
            text += "; " + "; ".join(f"{p} {glossary.PHASE_WORDS[p]}" for p in glossary.PHASE_WORDS
                                     if p in phases[name])
        legend[name] = text
    g.graph["legend"] = legend


def _portable(path: str) -> str:
    """The spec's path as saved in a trace: relative to the current folder
    when it lies below it, so that `replay` works from a fresh checkout."""
    p = Path(path)
    if p.is_absolute():
        try:
            return str(p.relative_to(Path.cwd()))
        except ValueError:
            return path
    return path


def _write_tmp(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a later run removes what a killed one left (checker.inputs)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a trace is for sharing
    return tmp


def _unlink(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary file in the same folder,
    then rename(2).  Ctrl-C (KeyboardInterrupt) at any point leaves either the
    old file or the new one, and no temporary file behind."""
    write_atomic_many([(path, text)])


def write_atomic_many(items: list[tuple[Path, str]]) -> None:
    """All temporaries first, then the renames back to back, so that an
    interrupted save leaves no half-written file and almost never a .txt
    and .json from different runs."""
    tmps: list[str] = []
    try:
        for path, text in items:
            tmps.append(_write_tmp(path, text))
        for (path, _), tmp in zip(items, tmps):
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps:
            _unlink(tmp)
        raise


def counterexample_paths(folder: Path, stem: str, rank: int = 1) -> tuple[Path, Path]:
    """Where counterexample `rank` of a spec is saved: NAME.txt/.json for
    the first (what CI replays), NAME.2.txt/.json, NAME.3... for the others."""
    base = stem if rank == 1 else f"{stem}.{rank}"
    return folder / f"{base}.txt", folder / f"{base}.json"


def save_counterexample(out: Outcome, folder: Path, stem: str | None = None) -> list[str]:
    """Write the counterexample(s) as text and ITF JSON.  When several were
    asked for, numbered files beyond those found now (NAME.4.* from an
    earlier run that found 4) are removed, so every saved file replays."""
    assert out.graph is not None and out.spec is not None
    stem = stem or out.spec.name  # the CLI gives x-2 to a second spec named x.toml
    items: list[tuple[Path, str]] = []
    for rank, g in enumerate([out.graph] + out.more, start=1):
        txt, js = counterexample_paths(folder, stem, rank)
        items += [(txt, render(g, "text")), (js, render(g, "json"))]
    write_atomic_many(items)
    if out.distinct is not None:
        _remove_stale(folder, stem, len(out.more) + 1)
    out.files = [str(p) for p, _ in items]
    return out.files


def _remove_stale(folder: Path, stem: str, kept: int) -> None:
    pat = re.compile(re.escape(stem) + r"\.([0-9]+)\.(txt|json)")
    for p in folder.glob(f"{glob.escape(stem)}.*.*"):
        m = pat.fullmatch(p.name)
        if m and int(m[1]) > kept:
            _unlink(str(p))


# -------------------------------------------------------------------- JUnit


def junit_xml(outcomes: list[Outcome], strict: bool = False, not_checked: list[str] | None = None,
              why: str = "") -> str:
    """JUnit XML for CI, valid against the JUnit schema CI servers read
    (junit-10.xsd of Jenkins' xunit plugin; tests/test_junit_schema.py):
    one <testsuite> per spec (its properties: tool version, spec hash,
    preset, rules, engine, expected and actual verdict, one `warning` per
    warning, also listed in <system-err>) and one <testcase> per property.
    A verdict other than the expected one is a <failure>; a spec error, or
    a resource limit hit before a verdict, is an <error>; a property the
    search never reached (it stopped at another's violation) is <skipped>.
    With `strict`, a spec's warnings are one more testcase, `(warnings)`,
    failed with type "warnings".  Each spec in `not_checked` (Ctrl-C,
    --total-timeout) is a suite whose one testcase, `(spec)`, is an error
    of type "not-checked" saying `why`.  The schema has no `skipped` on
    <testsuites>: the count is on each <testsuite> only."""
    root = ET.Element("testsuites", name="rseqcheck")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for o in outcomes:
        r = o.result
        secs = r.stats.seconds if r else 0.0
        total_time += secs
        suite = ET.SubElement(root, "testsuite", name=o.path)
        props = ET.SubElement(suite, "properties")
        info: dict[str, Any] = {"tool": "rseqcheck", "tool_version": __version__}
        if o.spec:
            info.update(spec_hash=o.spec.hash, preset=o.spec.preset, expected=o.expected or "holds",
                        rules=", ".join(f"{k}={v}" for k, v in o.spec.rules.items()) or "none")
        if o.proposal:
            info["proposal"] = o.proposal.describe()
        info["verdict"] = o.verdict
        if r:
            info.update(engine=r.engine, summary=o.describe(), states=r.stats.states, depth=r.stats.depth)
        for k, v in info.items():
            ET.SubElement(props, "property", name=k, value=str(v))
        for w in o.warnings:
            ET.SubElement(props, "property", name="warning", value=w.text())
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        cases = o.property_verdicts() if o.spec else [("(spec)", "error")]
        if strict and o.warnings:
            cases = cases + [("(warnings)", "warnings")]
        for prop, verdict in cases:
            counts["tests"] += 1
            tc = ET.SubElement(suite, "testcase", classname=o.path, name=prop, time=f"{secs / max(len(cases), 1):.3f}")
            if o.error:
                counts["errors"] += 1
                ET.SubElement(tc, "error", type="spec-error", message=o.error).text = o.error
            elif prop == "(warnings)":
                counts["failures"] += 1
                msg = f"{len(o.warnings)} warning{'s' if len(o.warnings) != 1 else ''} (--strict)"
                ET.SubElement(tc, "failure", type="warnings", message=msg).text = "\n".join(w.text() for w in o.warnings)
            elif prop == "[outcomes]":
                if verdict in ("holds", "fails") and verdict != o.outcomes_expected:
                    counts["failures"] += 1
                    ET.SubElement(tc, "failure", type="outcomes", message=o.outcomes_check[1]).text = o.outcomes_check[1]
                elif verdict == "unknown":
                    counts["errors"] += 1
                    ET.SubElement(tc, "error", type="resource-limit", message=o.outcomes_check[1])
            elif verdict == "unknown":
                counts["errors"] += 1
                ET.SubElement(tc, "error", type="resource-limit", message=o.describe())
            elif verdict == NOT_PROOF and (o.expected or "holds") == "holds":
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", message=o.describe())
            elif verdict == "not reached":
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", message=f"search stopped at the violation of {r.prop if r else '?'}")
            elif o.verdict == (o.expected or "holds"):
                pass
            else:
                counts["failures"] += 1
                msg = f"expected {o.expected or 'holds'}, got {o.describe()}"
                f = ET.SubElement(tc, "failure", type="verdict", message=msg)
                f.text = msg + (f"\ncounterexample: {', '.join(o.files)}" if o.files else "")
        if o.warnings:
            ET.SubElement(suite, "system-err").text = "\n".join(w.text() for w in o.warnings)
        for k, v in counts.items():
            suite.set(k, str(v))
            if k in totals:
                totals[k] += v
        suite.set("time", f"{secs:.3f}")
    for path in not_checked or []:
        suite = ET.SubElement(root, "testsuite", name=path, tests="1", failures="0", errors="1", skipped="0",
                              time="0.000")
        tc = ET.SubElement(suite, "testcase", classname=path, name="(spec)", time="0.000")
        ET.SubElement(tc, "error", type="not-checked", message=f"not checked: {why}")
        totals["tests"] += 1
        totals["errors"] += 1
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_clean(ET.tostring(root, encoding="unicode")) + "\n"
