"""What a proposal changes across a corpus of specs (`rseqcheck impact`).

Each spec is checked twice with the explicit engine: under a baseline (each
spec's own preset and rules, or a preset and rules from the command line)
and under the proposal.  A spec *flips* when its verdict changes (holds <->
violation) or when another property is now the one violated.  A spec that
cannot be built on one side (a feature the other kernel lacks) is *not
comparable*; one that cannot be built on either side (a TOML error, an
unknown label) is an *error*; a search that hit a limit on either side is
*unknown*.  A search stopped by Ctrl-C raises KeyboardInterrupt from
`compare`: the spec is not compared and the run stops there.

Each side's verdict is the search's: the first property found violated,
with the length of its counterexample; "holds" when none is, within the
spec's depth bound (or --depth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rseqcheck.checker.proposal import Proposal
from rseqcheck.checker.verify import Outcome, check_spec

KINDS = ("flipped", "not comparable", "unknown", "unchanged", "error")


@dataclass
class Side:
    """One side's result on one spec."""

    outcome: Outcome
    label: str  # the proposal or baseline, for messages

    @property
    def verdict(self) -> str:  # holds | violation | unknown | error
        return self.outcome.verdict

    @property
    def prop(self) -> str | None:
        r = self.outcome.result
        return r.prop if r is not None and r.verdict == "violation" else None

    @property
    def steps(self) -> int | None:
        r = self.outcome.result
        return len(r.trace) - 1 if r is not None and r.verdict == "violation" else None

    def describe(self) -> str:
        o = self.outcome
        if o.error:
            return "cannot be built"
        r = o.result
        assert r is not None
        if r.verdict == "violation":
            return f"violation of {self.prop} ({self.steps} steps)"
        if r.verdict == "holds":
            return "holds" if r.exhausted else f"holds to depth {r.bound}"
        return f"unknown ({r.reason})"


@dataclass
class Change:
    path: str
    before: Side
    after: Side
    same_model: bool  # the proposal does not touch this spec's preset or rules

    @property
    def kind(self) -> str:
        b, a = self.before, self.after
        if b.verdict == "error" or a.verdict == "error":
            return "error" if b.verdict == a.verdict == "error" else "not comparable"
        if "unknown" in (b.verdict, a.verdict):
            return "unknown"
        if (b.verdict, b.prop) != (a.verdict, a.prop):
            return "flipped"
        return "unchanged"

    def record(self) -> dict:
        def side(s: Side) -> dict:
            o = s.outcome
            d = {"verdict": s.verdict, "summary": s.describe(), "property": s.prop, "steps": s.steps}
            if o.spec is not None:
                d.update(preset=o.spec.preset, rules=dict(o.spec.rules))
            if o.error:
                d["error"] = o.error
            if o.files:
                d["counterexample_files"] = o.files
            return d

        return {"spec": self.path, "kind": self.kind, "same_model": self.same_model,
                "before": side(self.before), "after": side(self.after)}


def compare(path: str, baseline: Proposal, proposal: Proposal,
            check: Callable[..., Outcome] = check_spec, **kw) -> Change:
    """Check `path` under both; `kw` goes to `check` (depth, timeout, ...).
    When the proposal leaves the spec's model as the baseline has it, the
    spec is checked once, and so is a spec that cannot be loaded.
    KeyboardInterrupt when a search was interrupted (Ctrl-C)."""
    before = _checked(check, path, baseline, kw)
    b_spec = before.spec
    if b_spec is None and before.error:  # not even loaded: the same on the other side
        return Change(path, Side(before, "baseline"), Side(before, "proposal"), same_model=False)
    if b_spec is not None and before.error is None:
        # the spec as the proposal has it: the same preset and rules, the same model
        a_spec = proposal.apply(b_spec)
        if (a_spec.preset, a_spec.rules) == (b_spec.preset, b_spec.rules):
            return Change(path, Side(before, "baseline"), Side(before, "proposal"), same_model=True)
    both = Proposal(proposal.preset or baseline.preset, {**baseline.rules, **proposal.rules})
    after = _checked(check, path, both, kw)
    return Change(path, Side(before, "baseline"), Side(after, "proposal"), same_model=False)


def _checked(check: Callable[..., Outcome], path: str, proposal: Proposal, kw: dict) -> Outcome:
    """One side; the engines report Ctrl-C as an "interrupted" result,
    which stops the whole comparison."""
    o = check(path, proposal=proposal, **kw)
    if o.interrupted:
        raise KeyboardInterrupt
    return o
