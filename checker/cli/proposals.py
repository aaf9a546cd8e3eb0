"""`rseqcheck impact`: which verdicts a proposal flips across a corpus;
`rseqcheck synthesize`: which choices of open rules make specs hold.

impact's exit status: 0 nothing flipped; 1 some verdict flipped; 2 a spec
or usage error (a spec that cannot be built under the baseline, or at all:
kind "error"); 3 a resource limit on some spec before a verdict, or an
interrupt; 4 an output error (a counterexample could not be written).  An
interrupt is 3 whatever else was found (impact_status).  A spec that
can be built under the baseline but not under the proposal is listed as
not comparable and does not change the exit status.

synthesize's: 0 some combination works; 1 none does; 2 a spec or usage
error (every spec is loaded before any search); 3 no combination works but
some stopped at a limit, or an interrupt (whatever else was found: the
table is partial, no minimal set is given).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rseqcheck.checker import __version__
from rseqcheck.checker.impact import KINDS, Change, compare
from rseqcheck.checker.inputs import collect_specs
from rseqcheck.checker.limits import CtrlC, LimitHit, Limits, Seconds, Watchdog
from rseqcheck.checker.outputs.columns import wrap as _wrap
from rseqcheck.checker.outputs.errors import report
from rseqcheck.checker.outputs.layout import clash_warning, layout
from rseqcheck.checker.outputs.progress import Ticker
from rseqcheck.checker.proposal import Proposal, ProposalError, parse_rules
from rseqcheck.checker.synthesize import (
    GOALS,
    MAX_COMBINATIONS,
    Trial,
    count,
    load_all,
    minimal,
    not_tried,
    own_choices,
    undercut,
)
from rseqcheck.checker.synthesize import synthesize as run_synthesis
from rseqcheck.checker.verify import save_counterexample
from rseqcheck.model.rules import ALIASES, PRESETS, RULES


class _Usage(click.UsageError):
    exit_code = 2


def _proposal(preset: str | None, pairs: tuple[str, ...]) -> Proposal:
    try:
        return Proposal(preset, parse_rules(pairs))
    except ProposalError as e:
        raise _Usage(str(e)) from None


def _below(f: str, out_dir: str) -> str:
    """A saved file as a path below --out (checker/outputs/layout.py)."""
    try:
        return Path(f).relative_to(out_dir).as_posix() if out_dir else Path(f).name
    except ValueError:
        return f


def render_text(changes: list[Change], baseline: Proposal, proposal: Proposal, interrupted: bool,
                out_dir: str = "", not_compared: list[str] | None = None) -> str:
    """The flip table: each flipped spec on its own lines (path, then
    before -> after and the new counterexample), the specs that cannot be
    built, then the counts (with the specs not compared after an
    interrupt)."""
    not_compared = not_compared or []
    base = baseline.describe() if baseline else "each spec's own preset and rules"
    lines = _wrap(f"impact of {proposal.describe()}", "") + _wrap(f"baseline: {base}", "")
    by = {k: [c for c in changes if c.kind == k] for k in KINDS}
    for kind in ("flipped", "not comparable", "unknown"):
        if not by[kind]:
            continue
        lines += ["", f"{kind} ({len(by[kind])}):"]
        for c in by[kind]:
            lines += _wrap(c.path, "  ")
            lines += _wrap(f"{c.before.describe()} -> {c.after.describe()}", "    ")
            side = c.after if c.kind != "not comparable" or c.after.outcome.error else c.before
            if side.outcome.error:
                lines += _wrap(side.outcome.error, "    ")
            for f in c.after.outcome.files[1::2]:  # the ITF file; the .txt sits beside it
                lines += _wrap(f"counterexample: {_below(f, out_dir)}", "    ")
    if by["error"]:  # the messages (file:line) are on stderr
        lines += ["", f"error ({len(by['error'])}):"]
        for c in by["error"]:
            lines += _wrap(c.path, "  ")
    if out_dir and any(c.after.outcome.files for c in changes):
        lines += [""] + _wrap(f"counterexamples (NAME.txt, the email text; NAME.json, ITF) are in {out_dir}/", "")
    lines.append("")
    counts = ", ".join(f"{len(by[k])} {k}{'s' if k == 'error' and len(by[k]) != 1 else ''}"
                       for k in KINDS if k != "error" or by[k])
    if interrupted:
        counts += f"; {len(not_compared)} not compared (interrupted)"
    lines += _wrap(f"{len(changes)} specs: {counts}", "")
    return "\n".join(lines)


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--from", "from_preset", type=click.Choice(PRESETS), metavar="PRESET",
              help="Baseline preset (default: each spec's own).")
@click.option("--base-rule", "base_pairs", multiple=True, metavar="NAME=CHOICE",
              help="A rule of the baseline, over each spec's own (repeatable).")
@click.option("--to", "to_preset", type=click.Choice(PRESETS), metavar="PRESET",
              help="The proposal's preset (default: the baseline's).")
@click.option("--rule", "rule_pairs", multiple=True, metavar="NAME=CHOICE",
              help="A rule of the proposal, over the baseline's (repeatable).")
@click.option("--depth", type=click.IntRange(1, 100000), help="Override each spec's [check] depth.")
@click.option("--timeout", type=Seconds(), help="Seconds per spec (both sides) before giving up on it.")
@click.option("--max-states", type=click.IntRange(1), metavar="N",
              help="Give up on a spec once a search has seen more than N states.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="counterexamples/impact",
              show_default=True, help="Where the proposal's new counterexamples are written.")
@click.option("--show-trace", is_flag=True, help="Print each new counterexample after the table.")
def impact(paths, from_preset, base_pairs, to_preset, rule_pairs, depth, timeout, max_states, fmt, out_dir,
           show_trace) -> None:
    """Which verdicts a proposal flips across PATHS (default: specs/).

    Every spec is checked under a baseline and under the proposal (explicit
    engine); the flips are listed, each with the new shortest counterexample
    or the property that now holds; a spec that cannot be built on either
    side (a TOML error, an unknown label) is an error.  Exit status: 0
    nothing flipped; 1 some verdict flipped; 2 a spec or usage error; 3 a
    limit or an interrupt; 4 a counterexample could not be written.  When
    several apply, an interrupt (Ctrl-C, SIGTERM, SIGHUP) wins: it stops
    the run at once, exit 3, the specs not compared counted (listed in the
    JSON as not_compared); otherwise 2 wins over 4, 4 over 1, 1 over 3.
    Counterexamples go under --out in the layout of the spec folders (as
    `verify` saves them).

    \b
    The 6.19 rewrite, reviewed over the bundled specs:
      rseqcheck impact --from linux-6.18 --to linux-6.19 specs/
    A proposed rule choice against each spec's own kernel:
      rseqcheck impact --rule next_syscall.on_signal=clear specs/seed000"""
    baseline = _proposal(from_preset, base_pairs)
    proposal = _proposal(to_preset, rule_pairs)
    if not proposal:
        raise _Usage("impact needs a proposal: --to PRESET and/or --rule NAME=CHOICE")
    files, problem = collect_specs(paths or ("specs",))
    if problem:
        raise _Usage(problem)
    limits = Limits(timeout, max_states)
    kw: dict = {"depth": depth}
    if max_states:
        kw["max_states"] = max_states
    changes: list[Change] = []
    errors: list[str] = []
    io_errors: list[str] = []
    interrupted = False
    progress = Ticker("impact", len(files)) if fmt == "text" else None
    out = Path(out_dir)
    places, clashes = layout(paths or ("specs",), files)
    for f, other, place in clashes:
        for line in _wrap(clash_warning(f, other, place, out_dir), "", "  "):
            click.echo(line, err=True)
    from rseqcheck.checker.cli.app import _terminate_as_interrupt

    reached = 0  # specs dealt with: compared, or given up at a limit
    with _terminate_as_interrupt(), CtrlC():
        try:
            for k, f in enumerate(files, start=1):
                if progress:
                    progress(k, f)
                try:
                    with Watchdog(limits) as wd:  # both sides of one spec share the limits
                        change = compare(f, baseline, proposal, timeout=timeout, progress=wd.progress(None), **kw)
                except LimitHit as e:
                    errors.append(f"{f}: unknown: {e.reason}")
                    reached += 1
                    continue
                except MemoryError:
                    errors.append(f"{f}: unknown: out of memory")
                    reached += 1
                    continue
                changes.append(change)
                reached += 1
                if change.before.verdict == "error":
                    errors.append(change.before.outcome.error or f"{f}: error")
                if change.kind == "flipped" and change.after.outcome.graph is not None:
                    try:
                        save_counterexample(change.after.outcome, places[f].path(out), places[f].stem)
                    except OSError as e:
                        io_errors.append(f"{e.filename or out}: cannot write the counterexample: {e.strerror or e}")
        except KeyboardInterrupt:  # a search stopped by Ctrl-C (compare), or outside one; SIGTERM, SIGHUP
            interrupted = True
        if progress:
            progress.done()
        not_compared = files[reached:]
        code = impact_status(changes, interrupted, len(changes) < len(files), bool(io_errors))
        if fmt == "json":
            doc = {"tool": "rseqcheck", "version": __version__, "exit_status": code, "interrupted": interrupted,
                   "not_compared": not_compared, "baseline": baseline.record(), "proposal": proposal.record(),
                   "summary": {k: sum(1 for c in changes if c.kind == k) for k in KINDS},
                   "specs": [c.record() for c in changes], "errors": errors, "output_errors": io_errors}
            click.echo(json.dumps(doc, indent=1))
        else:
            click.echo(render_text(changes, baseline, proposal, interrupted, out_dir, not_compared))
            if show_trace:
                from rseqcheck.checker.outputs.trace import render_text as trace_text

                for c in changes:
                    if c.kind == "flipped" and c.after.outcome.graph is not None:
                        click.echo("")
                        click.echo(trace_text(c.after.outcome.graph))
        if interrupted:
            under_way = f" (during {not_compared[0]})" if not_compared else ""
            for line in _wrap(f"interrupted{under_way}: {len(not_compared)} of {len(files)} specs not compared",
                              "", "  "):
                click.echo(line, err=True)
        for msg in errors:
            click.echo(msg, err=True)
        for msg in io_errors:
            report(msg)
    sys.exit(code)


def impact_status(changes: list[Change], interrupted: bool, missing: bool, io_errors: bool) -> int:
    """impact's exit status: an interrupt is 3 whatever was found before it
    (the table is incomplete); then 2 a spec that cannot be built (under
    the baseline, or at all), 4 an output error, 1 a flip, 3 a limit."""
    if interrupted:
        return 3
    if any(c.before.verdict == "error" for c in changes):
        return 2
    if io_errors:
        return 4
    if any(c.kind == "flipped" for c in changes):
        return 1
    if missing or any(c.kind == "unknown" for c in changes):
        return 3
    return 0


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--open", "open_rules", multiple=True, required=True, metavar="RULE",
              help="A rule whose choices are tried (repeatable; see `rseqcheck rules`).")
@click.option("--preset", type=click.Choice(PRESETS), metavar="PRESET",
              help="Every spec under this preset (default: each spec's own).")
@click.option("--rule", "rule_pairs", multiple=True, metavar="NAME=CHOICE",
              help="A rule fixed over each spec's own (repeatable).")
@click.option("--goal", type=click.Choice(GOALS), default="holds", show_default=True,
              help="holds: no property violated in any spec; expect: each spec's own expected verdict.")
@click.option("--depth", type=click.IntRange(1, 100000), help="Override each spec's [check] depth.")
@click.option("--timeout", type=Seconds(), help="Seconds per spec and combination before giving up on it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def synthesize(paths, open_rules, preset, rule_pairs, goal, depth, timeout, fmt) -> None:
    """Which choices of the --open rules make every spec in PATHS hold.

    Every combination of the open rules' choices is checked (explicit
    engine) over every spec, on top of each spec's own preset and rules;
    each is listed with the first spec it fails, then the minimal working
    ones (fewest changes from the first spec's own choices).  Every spec is
    loaded first: a spec error (file:line) stops the run before any search.
    Exit status: 0 some combination works; 1 none does; 2 a spec or usage
    error; 3 a limit left the answer open, or an interrupt (Ctrl-C,
    SIGTERM, SIGHUP), which wins over the others: it stops the run at
    once, names the combinations not tried and gives no minimal set (it
    needs the whole table).

    \b
    Which settings of the seed-000 proposal make Vyukov's scheme safe:
      rseqcheck synthesize specs/seed000/vyukov_keep_linux418.toml \\
        --open next_syscall.on_signal --open next_syscall.consume"""
    names = []
    for r in open_rules:
        name = ALIASES.get(r.strip(), r.strip())
        if name not in RULES:
            raise _Usage(f"--open {r!r}: not a rule (see `rseqcheck rules`)")
        if name in names:
            raise _Usage(f"--open {r!r}: given twice")
        names.append(name)
    fixed = _proposal(preset, rule_pairs).rules
    clash = sorted(set(fixed) & set(names))
    if clash:
        raise _Usage(f"--rule {clash[0]} is also --open")
    n = count(names)
    if n > MAX_COMBINATIONS:
        raise _Usage(f"{n:,} combinations; at most {MAX_COMBINATIONS:,} (open fewer rules)")
    files, problem = collect_specs(paths)
    if problem:
        raise _Usage(problem)
    problems = load_all(files, preset, fixed)  # every spec error before any search
    if problems:
        for msg in problems:
            click.echo(msg, err=True)
        sys.exit(2)
    notes = own_choices(files, names)
    if fmt == "text":
        for msg in notes:
            for line in _wrap(msg, "", "  "):
                click.echo(line, err=True)
    progress = Ticker("synthesize", n, "combinations") if fmt == "text" else None
    done: list[Trial] = []
    interrupted = False

    def seen(t: Trial) -> None:
        done.append(t)
        if progress:
            progress(len(done), " ".join(f"{k}={v}" for k, v in t.choices.items()))

    from rseqcheck.checker.cli.app import _terminate_as_interrupt

    with _terminate_as_interrupt(), CtrlC():
        try:
            run_synthesis(files, names, preset, fixed, goal, on_trial=seen, depth=depth, timeout=timeout)
        except KeyboardInterrupt:  # a search stopped by Ctrl-C, or outside one; SIGTERM, SIGHUP
            interrupted = True
        if progress:
            progress.done()
        left = not_tried(names, done)
        errors = [t.failed.error for t in done if t.failed is not None and t.failed.error]
        best = None if interrupted else minimal(done)  # minimal needs the whole table
        if interrupted:
            code = 3
        elif errors and len(errors) == len(done):
            code = 2
        elif any(t.works for t in done):
            code = 0
        elif any(t.unknown for t in done):
            code = 3
        else:
            code = 1
        if fmt == "json":
            doc = {"tool": "rseqcheck", "version": __version__, "exit_status": code, "interrupted": interrupted,
                   "goal": goal, "open": names, "preset": preset, "fixed": fixed, "specs": files,
                   "combinations": [{"choices": t.choices, "works": t.works, "unknown": t.unknown,
                                     "changes": dict(sorted(t.changes)), "failed": t.why() or None} for t in done],
                   "not_tried": left, "minimal": None if best is None else [t.choices for t in best],
                   "minimal_unless": None if best is None else [[u.choices for u in us] for us in undercut(best, done)],
                   "notes": notes}
            click.echo(json.dumps(doc, indent=1))
        else:
            click.echo(render_synthesis(done, best, names, files, preset, fixed, goal, interrupted, left))
    sys.exit(code)


def render_synthesis(trials: list[Trial], best: list[Trial] | None, names: list[str], files: list[str],
                     preset: str | None, fixed: dict[str, str], goal: str, interrupted: bool,
                     left: list[dict[str, str]] | None = None) -> str:
    """The table, then the count and the minimal working combinations; after
    an interrupt (`best` None) the combinations not tried instead."""
    what = "every spec holds" if goal == "holds" else "every spec gives its expected verdict"
    lines = _wrap(f"synthesize: {len(names)} open rule{'s' if len(names) != 1 else ''} over "
                  f"{len(files)} spec{'s' if len(files) != 1 else ''}; goal: {what}", "")
    lines += _wrap(f"preset: {preset or 'each spec' + chr(39) + 's own'}; fixed: "
                   + (", ".join(f"{k}={v}" for k, v in fixed.items()) or "none"), "")
    lines.append("")
    for t in trials:
        mark = "ok  " if t.works else ("??  " if t.unknown else "FAIL")
        lines += _wrap(f"{mark} " + " ".join(f"{k}={v}" for k, v in t.choices.items()), "", " " * 5)
        if not t.works:
            lines += _wrap(t.why(), "       ")
    lines.append("")
    ok = sum(1 for t in trials if t.works)
    if interrupted:
        left = left or []
        total = len(trials) + len(left)
        lines += _wrap(f"interrupted: {len(trials)} of {total} combinations tried, {ok} of them work; "
                       "no minimal set from a partial table", "")
        if left:
            lines.append(f"not tried ({len(left)}):")
            for c in left:
                lines += _wrap(" ".join(f"{k}={v}" for k, v in c.items()), "  ", "    ")
        return "\n".join(lines)
    lines += _wrap(f"{ok} of {len(trials)} combinations work", "")
    if best:
        lines.append("minimal (fewest changes from the first spec's own choices):")
        for t, us in zip(best, undercut(best, trials)):
            lines += _wrap(", ".join(f"{k}={v}" for k, v in sorted(t.changes)) or "no change: it works as it is",
                           "  ")
            for u in us:  # a limit left it open: it may work with fewer changes
                lines += _wrap("unless this one, stopped by a limit, works: "
                               + (", ".join(f"{k}={v}" for k, v in sorted(u.changes)) or "no change"), "    ", "      ")
    return "\n".join(lines)


COMMANDS = (impact, synthesize)
