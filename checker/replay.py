"""Replay a saved counterexample (ITF JSON) against today's semantics.

A trace records, per step, the action's label and actor and the state after
it, as shown (enum names, bools, ints).  Replaying rebuilds the spec's
system and, step by step, looks for an enabled action with the same label
and actor whose successor shows exactly the saved state.  Matching on the
shown state rather than on action indices keeps old traces meaningful when
actions are added, removed or reordered in model/: what must not change is
what the user saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from rseqcheck.checker import __version__
from rseqcheck.checker.engines.compile import compile_system
from rseqcheck.checker.inputs import InputError, TraceError, check_itf, read_trace_json, spec_named_by_trace
from rseqcheck.checker.outputs.trace import changes, from_itf, lasso_loop, show_state
from rseqcheck.checker.proposal import Proposal, ProposalError
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import ModelError, System, evaluate
from rseqcheck.model.spec import load_spec


class ReplayError(Exception):
    """The replay could not start: unreadable trace, missing or bad spec."""


@dataclass
class ReplayReport:
    ok: bool  # every step applies and the last state still violates the property
    message: str  # the one line to print
    details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    step: int | None = None  # the first step that no longer applies

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def load_trace(path: str | Path) -> nx.DiGraph:
    try:
        data = read_trace_json(path)  # a regular file, bounded in size and nesting
    except InputError as e:
        raise ReplayError(f"{path}: {e.strerror}") from None
    except TraceError as e:
        raise ReplayError(f"{path}: {e}") from None
    try:
        check_itf(data)  # types and printable text, before anything renders it
        return from_itf(data)
    except ValueError as e:
        raise ReplayError(f"{path}: not an rseqcheck ITF trace ({e})") from None


def _diff(want: dict, got: dict) -> str:
    parts = [f"{k}={got.get(k)!s} (saved {v!s})" for k, v in want.items() if got.get(k) != v]
    return ", ".join(parts[:6]) + (", ..." if len(parts) > 6 else "")


def replay_graph(g: nx.DiGraph, system: System) -> ReplayReport:
    comp = compile_system(system)
    n = g.number_of_nodes() - 1
    saved0 = g.nodes[0]["vars"]
    names = [v.name for v in system.vars]
    if set(names) != set(saved0):
        new = sorted(set(names) - set(saved0))
        gone = sorted(set(saved0) - set(names))
        why = "; ".join(x for x in (f"new: {', '.join(new)}" if new else "", f"gone: {', '.join(gone)}" if gone else "") if x)
        return ReplayReport(False, "step 0 no longer applies: the model's variables changed", [why], step=0)
    s = system.initial_state()
    if show_state(system, s) != saved0:
        return ReplayReport(False, "step 0 no longer applies: the initial state changed",
                            [_diff(saved0, show_state(system, s))], step=0)
    states, acts = [s], []
    for i in range(1, n + 1):
        e = g.edges[i - 1, i]
        want = g.nodes[i]["vars"]
        head = f"step {i} no longer applies: {e['label']}"
        if comp.terminal(s):
            return ReplayReport(False, head, ["the state before it has no successor now"], step=i)
        out: list = []
        comp.succ(s, out)
        same = [(a, t) for a, t in out if system.actions[a].label == e["label"] and system.actions[a].actor == e["actor"]]
        match = [(a, t) for a, t in same if show_state(system, t) == want]
        if match:
            a, s = match[0]
            states.append(s)
            acts.append(a)
            continue
        same = [t for _, t in same]
        if same:
            details = [f"{e['actor']} can take it, but it now leads elsewhere: {_diff(want, show_state(system, same[0]))}"]
        else:
            mine = sorted({system.actions[a].label for a, _ in out if system.actions[a].actor == e["actor"]})
            details = [f"no enabled action of {e['actor']} has this label"]
            if mine:
                details.append(f"{e['actor']} can now: " + "; ".join(mine[:5]) + ("; ..." if len(mine) > 5 else ""))
            elif out:
                details.append("enabled now: " + "; ".join(sorted({f"{system.actions[a].actor}: {system.actions[a].label}" for a, _ in out})[:5]))
        saved_change = "  ".join(changes(g.nodes[i - 1]["vars"], want))
        if saved_change:
            details.append(f"saved effect: {saved_change}")
        return ReplayReport(False, head, details, step=i)
    if lasso_loop(g) is not None:
        return _replay_lasso(g, system, states, acts)
    prop = g.graph.get("property")
    by_name = {p.name: p for p in system.properties}
    if prop not in by_name:
        return ReplayReport(False, f"replays all {n} steps, but {prop} is no longer checked in this spec")
    env = dict(zip(system.vars, s))
    if evaluate(by_name[prop].holds, env):
        return ReplayReport(False, f"replays all {n} steps, but the last state no longer violates {prop}")
    return ReplayReport(True, f"replays: still reaches {prop} ({n} steps)")


def _replay_lasso(g: nx.DiGraph, system: System, states: list[tuple], acts: list[int]) -> ReplayReport:
    """A liveness counterexample: the steps replayed, the cycle must close
    (or the last state have no successor) and the run still violate the
    goal under today's fairness (checker/engines/liveness.py:lasso_violation)."""
    from rseqcheck.checker.engines.liveness import lasso_violation, successors

    n = len(states) - 1
    key = g.graph.get("goal")
    goal = next((x for x in system.goals if x.key == key), None)
    if goal is None:
        return ReplayReport(False, f"replays all {n} steps, but {key} is no longer checked in this spec")

    loop = lasso_loop(g)
    assert loop is not None
    why = lasso_violation(system, goal, states, acts, loop, successors(system))
    if why is not None:
        return ReplayReport(False, f"replays all {n} steps, but the lasso no longer violates {key}", [why])
    what = "the run ends there" if loop == n else f"the cycle closes at state {loop}"
    return ReplayReport(True, f"replays: still reaches {key} ({n} steps; {what})")


def replay_file(trace: str | Path, spec_path: str | Path | None = None,
                cache: dict | None = None) -> ReplayReport:
    """Load the trace and the spec it names (relative to the current folder,
    or `spec_path`), and replay it.  ReplayError when it cannot start.
    `cache` (any dict, kept by the caller across calls) shares each spec's
    built system between the traces of one run."""
    g = load_trace(trace)
    h = g.graph
    given = spec_path is not None
    if spec_path is None:
        if not h.get("spec"):
            raise ReplayError(f"{trace}: the trace names no spec; pass --spec PATH")
        try:
            spec_path = spec_named_by_trace(str(trace), h["spec"])
        except TraceError as e:
            raise ReplayError(f"{trace}: {e}") from None
        if not Path(spec_path).exists():
            raise ReplayError(
                f"{trace}: its spec {spec_path} is not here (the path is relative to the folder `verify` "
                "ran in: run from there, or pass --spec PATH)"
            )
    key = (str(Path(spec_path).resolve()), repr(h.get("proposal")))
    try:
        if cache is not None and key in cache:
            spec, system = cache[key]
        else:
            spec = load_spec(spec_path)
            if "proposal" in h:  # saved by `verify --preset/--rule`: the same model again
                spec = Proposal.from_record(h["proposal"]).apply(spec)
            system = build_system(spec)
            if cache is not None:
                cache[key] = (spec, system)
    except ProposalError as e:
        raise ReplayError(f"{trace}: {e}") from None
    except SpecError as e:
        raise ReplayError(str(e)) from None
    except ModelError as e:
        raise ReplayError(f"{spec_path}: model error: {e}") from None
    warnings = []
    if h.get("spec_hash") and h["spec_hash"] != spec.hash:
        if given and h.get("spec") and Path(h["spec"]).name != Path(spec_path).name:
            warnings.append(f"warning: {spec_path} is not the spec the trace was saved from ({h['spec']}, "
                            f"sha256 {h['spec_hash']}; this one {spec.hash})")
        else:
            warnings.append(f"warning: {spec_path} changed since the trace was saved "
                            f"(sha256 {h['spec_hash']} then, {spec.hash} now)")
    if h.get("version") and h["version"] != __version__:
        warnings.append(f"note: saved by rseqcheck {h['version']}, replayed with {__version__}")
    report = replay_graph(g, system)
    report.warnings = warnings + report.warnings
    return report
