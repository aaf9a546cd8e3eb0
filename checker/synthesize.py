"""Which choices of some open rules make a set of specs hold
(`rseqcheck synthesize`).

Every combination of the open rules' choices is tried with the explicit
engine, over every spec, as a proposal (checker/proposal.py) on top of each
spec's own preset and rules (or a --preset and fixed --rule choices).  A
combination *works* when every spec meets the goal: `holds` (no property
is violated and the [outcomes] condition, if any, holds) or `expect` (each
spec's own expected verdict).  A combination stops at its first spec that
fails, which is reported with the property and the counterexample length.

The *minimal* working combinations are those whose set of changes from the
baseline (each open rule's choice in the first spec's own model) contains
no other working combination's set: the smallest proposals that work.
They need the whole table: a search stopped by Ctrl-C raises
KeyboardInterrupt from `synthesize` (the combination under way is not
recorded), and the caller reports no minimal set.

`load_all` loads every spec first, so that a spec error stops the run
before any search (the combinations would all fail on it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rseqcheck.checker.proposal import Proposal
from rseqcheck.checker.verify import Outcome, check_spec
from rseqcheck.model.errors import SpecError
from rseqcheck.model.rules import RULES
from rseqcheck.model.spec import load_spec

GOALS = ("holds", "expect")
MAX_COMBINATIONS = 1024


@dataclass
class Trial:
    choices: dict[str, str]  # open rule -> choice
    failed: Outcome | None = None  # the first spec that did not meet the goal
    unknown: bool = False  # a search stopped before a verdict (limit)
    checked: int = 0  # specs checked
    changes: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # from the baseline

    @property
    def works(self) -> bool:
        return self.failed is None and not self.unknown

    def why(self) -> str:
        o = self.failed
        if o is None:
            return ""
        if o.error:
            return o.error
        r = o.result
        assert r is not None
        if r.verdict == "violation":
            return f"{o.path}: violation of {r.prop} ({len(r.trace) - 1} steps)"
        if o.outcomes_check[0] is False:
            return f"{o.path}: [outcomes] fails"
        if r.verdict == "unknown":
            return f"{o.path}: unknown ({r.reason})"
        return f"{o.path}: {r.verdict}, expected {o.expected or 'holds'}"


def combinations(open_rules: list[str]) -> Iterator[dict[str, str]]:
    for combo in itertools.product(*(RULES[r].choices for r in open_rules)):
        yield dict(zip(open_rules, combo))


def count(open_rules: list[str]) -> int:
    n = 1
    for r in open_rules:
        n *= len(RULES[r].choices)
    return n


def baseline_choices(first_spec: str, open_rules: list[str], preset: str | None, fixed: dict[str, str]) -> dict[str, str]:
    spec = Proposal(preset, fixed).apply(load_spec(first_spec))
    return {r: spec.rules.get(r, RULES[r].default(spec.preset)) for r in open_rules}


def load_all(files: list[str], preset: str | None, fixed: dict[str, str]) -> list[str]:
    """The spec errors (`file:line: message`) of `files`, each loaded under
    the --preset and fixed rules."""
    errors = []
    for f in files:
        try:
            Proposal(preset, fixed).apply(load_spec(f))
        except SpecError as e:
            errors.append(str(e))
    return errors


def own_choices(files: list[str], open_rules: list[str]) -> list[str]:
    """A note for each spec whose [rules] sets an open rule: every
    combination overrides that choice (with goal `expect`, a spec written
    for its own choice may then fail in all of them)."""
    notes = []
    for f in files:
        spec = load_spec(f)
        notes += [f"note: {f} sets {r} = {spec.rules[r]} itself; --open {r} overrides it in every combination"
                  for r in open_rules if r in spec.rules]
    return notes


def undercut(best: list[Trial], trials: list[Trial]) -> list[list[Trial]]:
    """For each minimal working trial, the trials stopped by a limit
    (unknown) whose changes are a subset of its own: if one of them works,
    the minimal set is smaller than it looks."""
    unknown = [u for u in trials if u.unknown]
    return [[u for u in unknown if u.changes < t.changes] for t in best]


def not_tried(open_rules: list[str], trials: list[Trial]) -> list[dict[str, str]]:
    """The combinations without a trial, in their order."""
    done = [t.choices for t in trials]
    return [c for c in combinations(open_rules) if c not in done]


def meets(o: Outcome, goal: str) -> bool:
    if goal == "expect":
        return o.ok
    return o.error is None and o.verdict == "holds" and o.outcomes_check[0] is not False


def synthesize(files: list[str], open_rules: list[str], preset: str | None = None,
               fixed: dict[str, str] | None = None, goal: str = "holds",
               check: Callable[..., Outcome] = check_spec,
               on_trial: Callable[[Trial], None] | None = None, **kw) -> list[Trial]:
    """Every combination, in the order of the rules' choices; `kw` goes to
    `check` (depth, timeout, progress, ...)."""
    fixed = fixed or {}
    base = baseline_choices(files[0], open_rules, preset, fixed)
    out: list[Trial] = []
    for choices in combinations(open_rules):
        t = Trial(choices, changes=frozenset((r, c) for r, c in choices.items() if base[r] != c))
        p = Proposal(preset, {**fixed, **choices})
        for f in files:
            o = check(f, proposal=p, **kw)
            if o.interrupted:  # Ctrl-C in the search: the table stops here
                raise KeyboardInterrupt
            t.checked += 1
            if o.verdict == "unknown" and not o.error:
                t.unknown, t.failed = True, o
                break
            if not meets(o, goal):
                t.failed = o
                break
        out.append(t)
        if on_trial:
            on_trial(t)
    return out


def minimal(trials: list[Trial]) -> list[Trial]:
    """The working trials whose changes include no other working trial's."""
    ok = [t for t in trials if t.works]
    return [t for t in ok if not any(o.changes < t.changes for o in ok)]
