"""One spec under one engine, or under every engine with their verdicts
and shortest counterexample lengths compared (`verify --engine all`).

Engines disagree only when their results contradict each other: a
violation of length L against a "holds" that covers depth L (up to a bound
>= L, or unbounded), or two shortest counterexamples of different lengths.
A "holds up to depth K" next to a violation deeper than K is not a
contradiction, and neither is "unknown".

To keep `all` fast without weakening any claim:

* explicit's full search (no POR) gives the shortest counterexample, or
  the depth at which the reachable states run out (`exhausted`);
* bmc is unrolled only as deep as that: to the counterexample's length, or
  to the depth of explicit's last BFS level plus one, which covers every
  reachable state (so says its reason: that coverage rests on explicit's
  count); it has a time budget, past which it reports the depth it reached;
* induction (checker.symbolic.kinduction) first tries an invariant proved
  by Z3, else plain k-induction within a time budget: "induction could not
  close at k=K ...; holds up to depth N" is reported, not a disagreement.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from rseqcheck.checker.engines import symbolic
from rseqcheck.checker.engines.explicit import SearchResult, Stats, bfs, replay
from rseqcheck.checker.verify import Outcome, check_spec
from rseqcheck.model.ir import ModelError, System

# Seconds each symbolic engine may spend on a spec under `--engine all`
# before it reports the depth it reached instead of going on.
BMC_BUDGET = 30.0
INDUCTION_BUDGET = 30.0


def check_one(f: str, **kw) -> Outcome:
    """check_spec, with a bug in rseqcheck itself reported on one line (set
    RSEQCHECK_DEBUG=1 for the traceback) instead of ending the whole run."""
    try:
        return check_spec(f, **kw)
    except MemoryError:  # a resource limit (exit 3, checker.limits), not a bug
        raise
    except Exception as e:
        if os.environ.get("RSEQCHECK_DEBUG"):
            raise
        return Outcome(f, error=_internal(f, e))


def _internal(f: str, e: Exception) -> str:
    return (f"{f}: internal error: {type(e).__name__}: {e} (a bug in rseqcheck, not in the spec; "
            "RSEQCHECK_DEBUG=1 shows the traceback)")


def _stop_if_interrupted(r: SearchResult) -> None:
    """An engine stopped by Ctrl-C reports "interrupted" instead of raising;
    under --engine all the next engine must not start: the interrupt goes on
    up to `verify`, which stops there (exit 3)."""
    if r.reason == "interrupted":
        raise KeyboardInterrupt


def covered(r: SearchResult) -> float:
    """The depth up to which a result says no violation exists."""
    if r.verdict == "violation":
        return len(r.trace) - 2
    if r.verdict == "holds":
        return float("inf") if r.exhausted else r.bound
    return -1


def contradiction(runs: dict[str, SearchResult]) -> bool:
    """Do some two results contradict each other?"""
    lengths = {len(r.trace) - 1 for r in runs.values() if r.verdict == "violation"}
    if len(lengths) > 1:
        return True
    if not lengths:
        return False
    n = lengths.pop()
    return any(r.verdict == "holds" and covered(r) >= n for r in runs.values())


def summary(r: SearchResult) -> str:
    if r.verdict == "violation":
        return f"violation of {r.prop} in {len(r.trace) - 1} steps"
    if r.verdict == "holds":
        why = r.reason
        if r.engine == "explicit" and r.exhausted:
            why = f"all {r.stats.states:,} reachable states, none deeper than {r.stats.depth - 1} steps"
        return ("holds" if r.exhausted else f"holds up to depth {r.bound}") + (f" ({why})" if why else "")
    return f"unknown ({r.reason})"


def replays(system: System, r: SearchResult) -> bool:
    """A counterexample is a real execution: its steps replay in the
    explicit engine's successor function to the same states."""
    again = replay(system, [a for a, _ in r.trace[1:]])
    return again is not None and [s for _, s in again] == [s for _, s in r.trace]


def check_all(
    f: str,
    por: bool,
    depth: int | None = None,
    timeout: float | None = None,
    progress: Callable[[Stats], None] | None = None,
    bmc_budget: float | None = BMC_BUDGET,
    induction_budget: float | None = INDUCTION_BUDGET,
    **kw,
) -> Outcome:
    """Every engine on one spec; the explicit outcome is reported, with
    `engines` set to each engine's result, and `disagreement` set when
    two results contradict each other."""
    base = check_one(f, engine="explicit", por=por, depth=depth, timeout=timeout, progress=progress, **kw)
    if base.error or base.result is None or base.spec is None:
        return base
    if base.result.verdict == "unknown" and base.result.reason.startswith(("state limit", "interrupted")):
        return base  # Ctrl-C: stop here; --max-states: the other engines would search without it
    safety_cx = base.result.verdict == "violation" and base.result.goal is None
    if base.system is not None and base.system.goals and not safety_cx:  # an invariant's violation: as ever
        return _compare_goals(base, depth, timeout)
    try:
        return _compare(base, por, depth, timeout, bmc_budget, induction_budget)
    except MemoryError:
        raise
    except Exception as e:
        if os.environ.get("RSEQCHECK_DEBUG"):
            raise
        base.disagreement = _internal(f, e)
        return base


def _compare_goals(base: Outcome, depth: int | None, timeout: float | None) -> Outcome:
    """Liveness goals: explicit's lasso search against the bounded lasso
    search with Z3 (checker/engines/symbolic_liveness.py), on verdicts: a lasso of
    n steps from one engine against "holds" from the other covering n
    steps is a contradiction; each lasso must replay and break its goal.
    Induction does not apply (it proves invariants)."""
    from rseqcheck.checker.engines.liveness import lasso_violation, successors
    from rseqcheck.checker.engines.symbolic_liveness import lasso_bmc

    assert base.spec is not None and base.result is not None and base.system is not None
    system, r = base.system, base.result
    bound = depth if depth is not None else base.spec.depth
    runs = {"explicit": r}
    if r.verdict != "unknown":
        b = lasso_bmc(system, bound, timeout=timeout)
        _stop_if_interrupted(b)
        runs["bmc"] = b
    succ = successors(system)

    problems = []
    lassos = {e: x for e, x in runs.items() if x.verdict == "violation" and x.goal is not None and x.trace}
    for e, x in lassos.items():
        goal = next(g for g in system.goals if g.key == x.goal)
        again = replay(system, [a for a, _ in x.trace[1:]])
        why = "its steps do not replay" if again is None or [s for _, s in again] != [s for _, s in x.trace] else \
            lasso_violation(system, goal, [s for _, s in x.trace], [a for a, _ in x.trace[1:]], x.loop or 0, succ)
        if why:
            problems.append(f"{e}'s lasso is not a violation: {why}")
    for e, x in lassos.items():
        for o, y in runs.items():
            if o != e and y.verdict == "holds" and (y.exhausted or y.bound >= len(x.trace) - 1):
                problems.append(f"{e}: {summary_goal(x)}; {o}: {summary_goal(y)}")
    verdicts = {x.verdict for x in runs.values() if x.verdict != "unknown"}
    if not lassos and verdicts == {"violation", "holds"}:  # sometimes: unreachable against reached
        problems.append("; ".join(f"{e}: {summary_goal(x)}" for e, x in runs.items()))
    if problems:
        base.disagreement = "; ".join(problems)
    else:
        base.engines = {e: summary_goal(x) for e, x in runs.items()}
        base.engines["induction"] = "does not apply (it proves invariants, not liveness)"
    return base


def summary_goal(r: SearchResult) -> str:
    if r.verdict == "violation" and r.goal is not None:
        from rseqcheck.checker.verify import lasso_summary

        return lasso_summary(r).removeprefix("violation of ")
    return summary(r)


def _compare(base: Outcome, por: bool, depth: int | None, timeout: float | None,
             bmc_budget: float | None, induction_budget: float | None) -> Outcome:
    assert base.spec is not None and base.result is not None and base.system is not None
    system = base.system
    bound = depth if depth is not None else base.spec.depth
    r = base.result
    if por and (r.reduced or not r.shortest):
        # The reduced graph's depths are not the system's: the full search
        # gives the shortest counterexample or the real exhaustion depth.
        t = time.monotonic()
        r = bfs(system, bound, por=False, timeout=timeout)
        r.stats.seconds = time.monotonic() - t
        _stop_if_interrupted(r)
    runs: dict[str, SearchResult] = {"explicit": r}

    # bmc only as deep as explicit says anything can be.
    if r.verdict == "violation":
        b_bound, b_budget = len(r.trace) - 1, None
    elif r.verdict == "holds" and r.exhausted:
        b_bound, b_budget = min(bound, r.stats.depth), bmc_budget
    else:
        b_bound, b_budget = bound, bmc_budget
    try:
        b = symbolic.bmc(system, b_bound, timeout=timeout, budget=b_budget, coverage="none")  # vacuity: explicit
    except ModelError as e:
        base.disagreement = f"bmc: model error: {e}"
        return base
    if b.verdict == "holds" and not b.exhausted and r.exhausted and b.bound >= r.stats.depth:
        # No reachable state lies deeper than explicit's last level.
        b.reason = (f"covers every reachable state: explicit's full search found none deeper than "
                    f"{r.stats.depth - 1} steps")
    _stop_if_interrupted(b)
    runs["bmc"] = b

    # induction: a shortest counterexample needs no more than its length.
    i_bound = len(r.trace) - 1 if r.verdict == "violation" else bound
    try:
        runs["induction"] = symbolic.kinduction(system, i_bound, timeout=timeout, budget=induction_budget)
        _stop_if_interrupted(runs["induction"])
    except ModelError as e:
        base.disagreement = f"induction: model error: {e}"
        return base

    problems = []
    held = base.outcomes_check[0]
    if held is not None:
        # [outcomes] by bmc too, as deep as explicit says anything can be
        from rseqcheck.checker.outcomes_smt import Unsupported, smt_answer

        try:
            o_bound = min(bound, r.stats.depth) if r.verdict == "holds" and r.exhausted else bound
            got, msg, _ = smt_answer(base.spec, system, "bmc", o_bound, timeout)
        except Unsupported:
            got = None
        if got is not None and got != held:
            problems.append(f"[outcomes]: explicit: {'holds' if held else 'fails'}; {msg}")
    if contradiction({e: x for e, x in runs.items() if x.verdict != "unknown"}):
        problems.append("; ".join(f"{e}: {summary(x)}" for e, x in runs.items()))
    problems += [f"{e}'s counterexample does not replay in the explicit engine"
                 for e, x in runs.items() if x.verdict == "violation" and not replays(system, x)]
    if problems:
        base.disagreement = "; ".join(problems)
    else:
        base.engines = {e: summary(x) for e, x in runs.items()}
    return base
