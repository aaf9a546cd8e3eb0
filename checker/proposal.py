"""A proposal from the command line: a preset and rule choices that replace
a spec's own (`verify --preset P --rule NAME=CHOICE`, `impact`, and the
conformance commands).  The spec file is not touched: the proposal is
applied to the loaded spec, recorded in every output's header and in saved
traces, so that `replay` rebuilds the same model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rseqcheck.model.rules import ALIASES, PRESETS, RULES
from rseqcheck.model.spec import Spec


class ProposalError(ValueError):
    """A --preset or --rule the model does not know (a usage error, exit 2)."""


@dataclass(frozen=True)
class Proposal:
    preset: str | None = None  # None: each spec's own
    rules: dict[str, str] = field(default_factory=dict)  # canonical rule name -> choice

    def __bool__(self) -> bool:
        return self.preset is not None or bool(self.rules)

    def apply(self, spec: Spec) -> Spec:
        """The spec as the proposal has it: its preset replaced, its rule
        overrides merged (the proposal's win)."""
        if not self:
            return spec
        rules = {**spec.rules, **self.rules}
        return dataclasses.replace(spec, preset=self.preset or spec.preset, rules=rules)

    def describe(self) -> str:
        """One line for a header: `preset linux-6.19; rules a=b, c=d`."""
        parts = []
        if self.preset:
            parts.append(f"preset {self.preset}")
        if self.rules:
            parts.append("rules " + ", ".join(f"{k}={v}" for k, v in self.rules.items()))
        return "; ".join(parts) or "none"

    def record(self) -> dict[str, Any]:
        return {"preset": self.preset, "rules": dict(self.rules)}

    @classmethod
    def from_record(cls, rec: Any) -> Proposal:
        """The proposal a saved trace recorded (ProposalError if it is not one
        this model knows)."""
        if not isinstance(rec, dict):
            raise ProposalError("the trace's proposal is not a table")
        preset = rec.get("preset")
        rules = rec.get("rules") or {}
        if not isinstance(rules, dict) or not all(isinstance(v, str) for v in rules.values()):
            raise ProposalError("the trace's proposal rules are not NAME: CHOICE pairs")
        return cls(check_preset(preset, "the trace's proposal: preset") if preset is not None else None,
                   parse_rules(tuple(f"{k}={v}" for k, v in rules.items())))


def check_preset(preset: Any, what: str = "--preset") -> str:
    if preset not in PRESETS:
        raise ProposalError(f"{what} {preset!r}: unknown preset (known: {', '.join(PRESETS)})")
    return preset


def parse_rules(pairs: tuple[str, ...]) -> dict[str, str]:
    """`NAME=CHOICE` pairs (aliases accepted) as canonical name -> choice."""
    out: dict[str, str] = {}
    for p in pairs:
        name, sep, choice = p.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not sep or name not in RULES:
            raise ProposalError(f"--rule {p!r}: expected NAME=CHOICE with NAME a rule (see `rseqcheck rules`)")
        if choice.strip() not in RULES[name].choices:
            raise ProposalError(f"--rule {p!r}: choices of {name}: {', '.join(RULES[name].choices)}")
        if name in out and out[name] != choice.strip():
            raise ProposalError(f"--rule {p!r}: {name} is already set to {out[name]}")
        out[name] = choice.strip()
    return out
