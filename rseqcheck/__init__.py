"""rseqcheck as a library.

    import rseqcheck

    spec = rseqcheck.load("specs/seed000/rseq_keep_linux618.toml")
    out = rseqcheck.verify(spec)              # engine=, preset=, rules=, ...
    out.verdict, out.ok, out.stats.states     # "violation", True, 191
    print(rseqcheck.render(out))              # the email text; "json", "dot", "graphml"
    out.graph                                 # the trace as a networkx DiGraph

The repository's top-level `model/` (the semantics, one IR) and `checker/`
(engines and tooling) are installed as `rseqcheck.model` and
`rseqcheck.checker`; this module is the stable surface over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# From a checkout (this folder found through the current directory before
# the installed copy, or nothing installed): model/ and checker/ are the
# folders beside this one.  Installed, they are inside it.
_here = Path(__file__).resolve().parent
if not (_here / "model").is_dir() and (_here.parent / "model" / "ir.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821  (a package's __path__)

from rseqcheck.checker import __version__  # noqa: E402
from rseqcheck.checker.engines.explicit import Stats  # noqa: E402
from rseqcheck.checker.outputs.trace import FORMATS  # noqa: E402
from rseqcheck.checker.outputs.trace import render as _render  # noqa: E402
from rseqcheck.checker.proposal import Proposal, ProposalError, parse_rules  # noqa: E402
from rseqcheck.checker.replay import ReplayError, replay_file  # noqa: E402
from rseqcheck.checker.verify import ENGINES, Outcome, check_spec  # noqa: E402
from rseqcheck.model.errors import SpecError  # noqa: E402
from rseqcheck.model.spec import Spec, load_spec, loads_spec  # noqa: E402

__all__ = [
    "ENGINES", "FORMATS", "Outcome", "ProposalError", "ReplayError", "Result", "Spec", "SpecError", "Stats",
    "__version__", "load", "loads", "render", "replay", "verify",
]


def load(path: str | Path) -> Spec:
    """A spec from a file; SpecError (`file:line: message`) if it is bad."""
    return load_spec(path)


def loads(text: str, name: str = "<string>") -> Spec:
    """A spec from TOML text; `name` stands for the file in messages."""
    return loads_spec(text, name)


@dataclass
class Result:
    """What `verify` found: the Outcome the CLI reports, with shortcuts."""

    outcome: Outcome

    @property
    def verdict(self) -> str:
        """holds, violation, unknown (a limit was hit) or error."""
        return self.outcome.verdict

    @property
    def ok(self) -> bool:
        """The verdict is the one the spec expects."""
        return self.outcome.ok

    @property
    def error(self) -> str | None:
        return self.outcome.error

    @property
    def stats(self) -> Stats | None:
        """states, transitions, depth, seconds (None after a spec error)."""
        r = self.outcome.result
        return r.stats if r else None

    @property
    def violated(self) -> str | None:
        """The violated property, if any."""
        r = self.outcome.result
        return r.prop if r and r.verdict == "violation" else None

    @property
    def graph(self):
        """The counterexample as a networkx DiGraph (None without one)."""
        return self.outcome.graph

    def record(self) -> dict:
        """The JSON record `verify --format json` prints for this spec."""
        return self.outcome.record()


def verify(spec: str | Path | Spec, *, engine: str = "explicit", depth: int | None = None, por: bool = True,
           timeout: float | None = None, max_states: int | None = None, symmetry: bool = False,
           preset: str | None = None, rules: dict[str, str] | None = None, workers: int = 1) -> Result:
    """Check a spec (a path or a loaded Spec) as `rseqcheck verify` does.
    `preset`/`rules` override the spec's own (a proposal, as --preset and
    --rule); a bad rule raises ProposalError.  `workers`: processes for
    the explicit search without reduction (verify --workers).  Never
    raises for a bad spec: the result's verdict is "error" and `error`
    says why."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
    proposal = None
    if preset or rules:
        pairs = tuple(f"{k}={v}" for k, v in (rules or {}).items())
        proposal = Proposal(preset, parse_rules(pairs))
    target = spec if isinstance(spec, Spec) else str(spec)
    return Result(check_spec(target, depth=depth, engine=engine, por=por, timeout=timeout,
                             max_states=max_states, symmetry=symmetry, proposal=proposal, workers=workers))


def render(result: Result | Outcome, fmt: str = "text") -> str:
    """The counterexample as text (fits an email), ITF JSON, DOT or GraphML."""
    out = result.outcome if isinstance(result, Result) else result
    if out.graph is None:
        raise ValueError(f"{out.path}: no counterexample to render (verdict {out.verdict})")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return _render(out.graph, fmt)


def replay(path: str | Path):
    """Replay a saved counterexample (ITF JSON) against the model; raises
    ReplayError if it does not replay."""
    return replay_file(str(path))
