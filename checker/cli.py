"""The `rseqcheck` command line.

Exit status: 0 every verdict as expected; 1 some verdict differs from
`expect` (or, with no expect, a violation); 2 a spec or usage error; 3 a
resource limit (timeout, Ctrl-C) before a verdict.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import click

from checker import __version__
from checker.explicit import Stats
from checker.trace import from_itf, render_json, render_text
from checker.verify import ENGINES, Outcome, check_spec, save_counterexample
from model.properties import PROPERTIES
from model.rules import ERA, PRESETS, RULES


class Usage(click.UsageError):
    exit_code = 2


def _collect(paths: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir():
            out += sorted(str(x) for x in pp.rglob("*.toml"))
        elif pp.exists():
            out.append(p)
        else:
            raise Usage(f"{p}: no such file or folder")
    if not out:
        raise Usage("no spec files (*.toml) found in " + ", ".join(paths))
    return out


def _progress_printer(name: str):
    if not sys.stderr.isatty():
        return None

    def show(st: Stats) -> None:
        sys.stderr.write(
            f"\r{name}: {st.states:,} states, depth {st.depth}, {st.rate:,.0f} states/s, {st.seconds:.1f} s   "
        )
        sys.stderr.flush()

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rseqcheck")
def main() -> None:
    """Model checker for the Linux rseq / signal / syscall protocol."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--engine", type=click.Choice(ENGINES), default="explicit", show_default=True)
@click.option("--depth", type=click.IntRange(1, 100000), help="Override each spec's [check] depth.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="counterexamples", show_default=True,
              help="Where counterexample traces are written.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), help="Seconds per spec before giving up (exit 3).")
@click.option("--por/--no-por", default=True, show_default=True,
              help="Partial-order reduction; --no-por guarantees the shortest counterexample.")
@click.option("--show-trace/--no-show-trace", default=None,
              help="Print counterexamples (default: when one spec is checked).")
def verify(paths, engine, depth, fmt, out_dir, timeout, por, show_trace) -> None:
    """Check specs (files or folders) against their expected verdicts."""
    files = _collect(paths)
    outcomes: list[Outcome] = []
    interrupted = False
    for f in files:
        prog = _progress_printer(Path(f).stem) if fmt == "text" else None
        o = check_spec(f, depth=depth, engine=engine, por=por, timeout=timeout, progress=prog)
        if prog:
            sys.stderr.write("\r\033[K")
        if o.graph is not None:
            save_counterexample(o, Path(out_dir))
        outcomes.append(o)
        if o.result and o.result.reason == "interrupted":
            interrupted = True
            break
    if fmt == "json":
        click.echo(json.dumps({"tool": "rseqcheck", "version": __version__, "results": [o.record() for o in outcomes]}, indent=1))
    else:
        show = show_trace if show_trace is not None else len(files) == 1
        _print_text(outcomes, show)
    sys.exit(_exit_code(outcomes, interrupted))


def _exit_code(outcomes: list[Outcome], interrupted: bool) -> int:
    if any(o.error for o in outcomes):
        return 2
    if any(o.verdict != "unknown" and not o.ok for o in outcomes):
        return 1
    if interrupted or any(o.verdict == "unknown" for o in outcomes):
        return 3
    return 0


def _print_text(outcomes: list[Outcome], show_trace: bool) -> None:
    for o in outcomes:
        if o.error:
            click.echo(o.error, err=True)
            continue
        r = o.result
        assert r is not None and o.spec is not None
        mark = "ok  " if o.ok else ("??  " if o.verdict == "unknown" else "FAIL")
        exp = o.expected or "holds"
        click.echo(f"{mark} {o.path}: {o.describe()} (expected {exp}); "
                   f"{r.stats.states:,} states, {r.stats.transitions:,} transitions, {r.stats.seconds:.2f} s")
        for p in o.vacuous:
            click.echo(f"     warning: {p} is vacuous here (its trigger never occurred)")
        if o.files:
            click.echo(f"     counterexample: {', '.join(o.files)}")
        if show_trace and o.graph is not None:
            click.echo("")
            click.echo(render_text(o.graph))
    good = sum(1 for o in outcomes if o.ok)
    click.echo(f"{good} of {len(outcomes)} specs as expected")


@main.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show(trace, fmt) -> None:
    """Render a saved counterexample (ITF JSON)."""
    try:
        g = from_itf(json.loads(Path(trace).read_text()))
    except (ValueError, KeyError, TypeError) as e:
        click.echo(f"{trace}: not an rseqcheck ITF trace ({e})", err=True)
        sys.exit(2)
    click.echo(render_text(g) if fmt == "text" else render_json(g), nl=False)


@main.command()
@click.option("--preset", type=click.Choice(PRESETS), help="Only this preset's choices.")
def rules(preset) -> None:
    """List every rule, its choices, its default per preset and its source."""
    for r in RULES.values():
        click.echo(f"{r.name}{'  (proposal)' if r.proposal else ''}")
        click.echo(f"  choices: {' | '.join(r.choices)}")
        if preset:
            click.echo(f"  {preset}: {r.default(preset)}")
        else:
            by: dict[str, list[str]] = {}
            for p in PRESETS:
                by.setdefault(r.default(p), []).append(p)
            for choice, ps in by.items():
                click.echo(f"  default {choice}: {', '.join(ps)}")
        click.echo(f"  source: {r.source}")
        for line in textwrap.wrap(r.doc, 68):
            click.echo(f"  {line}")
        click.echo("")


@main.command()
def presets() -> None:
    """Table of presets x rules."""
    names = list(RULES)
    w = max(len(p) for p in PRESETS)
    click.echo(f"{'preset':<{w}}  era  " + "  ".join(names))
    for p in PRESETS:
        cells = [f"{RULES[n].default(p):<{len(n)}}" for n in names]
        click.echo(f"{p:<{w}}  {ERA[p]:<3}  " + "  ".join(cells))


@main.command()
def properties() -> None:
    """List the built-in properties."""
    for p in PROPERTIES.values():
        click.echo(p.name)
        for line in textwrap.wrap(p.doc, 68):
            click.echo(f"  {line}")
        click.echo(f"  from: {p.seed}")
        click.echo("")


if __name__ == "__main__":
    main()
