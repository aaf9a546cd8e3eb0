"""The `rseqcheck` command line.

Exit status: 0 every verdict as expected; 1 some verdict differs from
`expect` (or, with no expect, a violation); 2 a spec or usage error; 3 a
resource limit (timeout, --total-timeout, --max-states, --max-memory, out
of memory, Ctrl-C, SIGTERM, SIGHUP) before a verdict; 4 an output error (a
counterexample, the JUnit file or stdout could not be written:
`rseqcheck: error: ...`, checker/outputs/errors.py); 5 with --strict, every verdict as
expected but some spec has warnings (checker/caveats.py: a vacuous
property, a setup that does nothing, code never reached, a bound hit);
6 with --bitstate, no verdict differs but some spec expected to hold
got "no violation found", which is not a proof (checker/engines/bitstate.py).
When several apply, 2 wins over 4, 4 over 1, 1 over 3, 3 over 6 and 6
over 5: an unreadable spec or a missing result file matters more to CI
than a changed verdict, that more than a spec that ran out of time, and
that more than a verdict that says less than it seems to.

`replay` exits 0 when the trace still reaches its violation, 1 when a step
no longer applies (or the end no longer violates), 2 when it cannot start.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click
from rseqcheck.checker import __version__
from rseqcheck.checker.engines.bitstate import DEFAULT_K, DEFAULT_WINDOW, MAX_BITS, NOT_PROOF
from rseqcheck.checker.engines.explicit import Stats
from rseqcheck.checker.inputs import collect_specs, remove_stale_tmp
from rseqcheck.checker.limits import CtrlC, Limits, MemorySize, RunOver, Seconds
from rseqcheck.checker.outputs import progress
from rseqcheck.checker.outputs.columns import wide as want_wide
from rseqcheck.checker.outputs.columns import wrap
from rseqcheck.checker.outputs.errors import EXIT_OUTPUT, Group, report
from rseqcheck.checker.outputs.layout import clash_warning, layout
from rseqcheck.checker.outputs.progress import Ticker
from rseqcheck.checker.outputs.trace import FORMATS, render, render_text
from rseqcheck.checker.parallel import Job, default_jobs, run_job, run_jobs
from rseqcheck.checker.proposal import Proposal, ProposalError, parse_rules
from rseqcheck.checker.replay import ReplayError, load_trace, replay_file
from rseqcheck.checker.verify import ENGINES, Outcome, junit_xml, write_atomic
from rseqcheck.model.properties import PROPERTIES
from rseqcheck.model.rules import ALIASES, ERA, PRESETS, RULES

EXIT_WARNINGS = 5  # --strict: as expected, with warnings
EXIT_NOT_PROOF = 6  # --bitstate: no violation found where none was expected


class BitCount(click.ParamType):
    """A number of bits: `64M` (2^26), `1G`, `4096`, `16K`."""

    name = "SIZE"
    UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        s = str(value).strip().upper()
        unit = self.UNITS.get(s[-1:])
        try:
            n = int(s[:-1] if unit else s) * (unit or 1)
        except ValueError:
            self.fail(f"{value!r} is not a number of bits such as 64M or 1G", param, ctx)
        if not 8 <= n <= MAX_BITS:
            self.fail(f"{value!r}: give 8 to 4G bits", param, ctx)
        return n


class Usage(click.UsageError):
    exit_code = 2


def _collect(paths: tuple[str, ...]) -> list[str]:
    out, problem = collect_specs(paths)
    if problem:
        raise Usage(problem)
    return out


def _progress_printer(name: str, quiet: bool = False):
    """The search's progress on stderr: one line rewritten in place on a
    terminal; elsewhere (CI logs, pipes) a plain line every 10 s, so that a
    long search shows it is alive.  None with --quiet."""
    if quiet:
        return None
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(st: Stats) -> None:
        line = f"{name}: {st.states:,} states, depth {st.depth}, {st.rate:,.0f} states/s, {st.seconds:.1f} s"
        if tty:
            sys.stderr.write(f"\r{line}   ")
        elif st.seconds - last[0] >= progress.EVERY:
            last[0] = st.seconds
            sys.stderr.write(line + "\n")
        else:
            return
        sys.stderr.flush()

    return show


def _no_cache(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        # the environment, so that --jobs workers bypass it too (checker/engines/engine_cache.py)
        os.environ["RSEQCHECK_NO_CACHE"] = "1"


no_cache_option = click.option(
    "--no-cache", is_flag=True, expose_value=False, callback=_no_cache,
    help="Generate and compile the search's engine afresh instead of loading it from the on-disk cache "
         "($RSEQCHECK_CACHE_DIR, else $XDG_CACHE_HOME/rseqcheck or ~/.cache/rseqcheck).")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rseqcheck")
@no_cache_option
def main() -> None:
    """Model checker for the Linux rseq / signal / syscall protocol."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--engine", type=click.Choice(ENGINES + ("all",)), default="explicit", show_default=True,
              help="induction proves 'holds' for every depth (lemmas from the reachable states, checked by Z3). "
              "all: explicit, bmc and induction; exit 3 if their results contradict (a violation of length L "
              "beside a 'holds' covering L, different shortest lengths, or different answers to [outcomes]).")
@click.option("--depth", type=click.IntRange(1, 100000), help="Override each spec's [check] depth.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="counterexamples", show_default=True,
              help="Where counterexample traces are written, in the spec folders' layout: the spec's folder "
                   "relative to the common root of PATHS (a file given counts as its folder).")
@click.option("--junit", "junit", type=click.Path(), help="Also write JUnit XML here (for CI).")
@click.option("--timeout", type=Seconds(),
              help="Seconds per spec, loading, building and saving included, before giving up (exit 3).")
@click.option("--total-timeout", type=Seconds(),
              help="Seconds for the whole run: the spec under way then stops as with --timeout, the rest are "
                   "reported as not checked (exit 3); every output is still written.")
@click.option("--max-states", type=click.IntRange(1), metavar="N",
              help="Give up on a spec (exit 3) once the explicit search has seen more than N states.")
@click.option("--max-memory", type=MemorySize(), metavar="SIZE",
              help="Give up on a spec (exit 3) once the resident memory of rseqcheck and its processes (--workers) "
                   "passes SIZE (512M, 2G; a number: MiB).")
@click.option("--por/--no-por", default=True, show_default=True,
              help="Partial-order reduction; --no-por guarantees the shortest counterexample.")
@click.option("--por-frozen", is_flag=True,
              help="Explicit engine, with --por: also reduce where a thread reads variables other threads "
                   "write but cannot change from their current values (state-dependent independence; "
                   "fewer states, more time per state).")
@click.option("--symmetry", is_flag=True,
              help="Explicit engine: search one state per orbit of the permutations of interchangeable "
                   "threads (same code, attributes and starting CPU); replaces --por.")
@click.option("--bitstate", "bits", type=BitCount(), metavar="SIZE",
              help="Explicit engine: bitstate search (SPIN's -DBITSTATE) with a table of SIZE bits (64M, 1G; "
                   "rounded up to a power of two) instead of the set of states: for bug hunting beyond memory. "
                   "A violation found is real; none found is 'no violation found' (exit 6), not a proof, "
                   "with the coverage estimate.  No partial-order or symmetry reduction; invariants only.")
@click.option("--hash-k", "hash_k", type=click.IntRange(1, 32), default=DEFAULT_K, show_default=True,
              metavar="K", help="With --bitstate: bits set per state (hash functions).")
@click.option("--trace-window", "window", type=click.IntRange(1), default=DEFAULT_WINDOW, show_default=True,
              metavar="N", help="With --bitstate: keep the parents of the latest BFS levels up to N states; "
                                "a longer trace is rebuilt by searching again.")
@click.option("--show-trace/--no-show-trace", default=None,
              help="Print counterexamples (default: when one spec is checked).")
@click.option("--max-counterexamples", "max_cx", type=click.IntRange(1, 100000), default=1, show_default=True,
              metavar="N",
              help="Up to N counterexamples whose interleavings (the sequence of contexts taking the steps: "
                   "T0, T0.h1, T0:kernel, env...) differ, shortest first; saved as NAME.json, NAME.2.json, ... "
                   "Explicit engine only; N > 1 turns partial-order reduction off, so the set is complete "
                   "for the depth bound when fewer than N are found.")
@click.option("--preset", type=click.Choice(PRESETS), metavar="PRESET",
              help="Check every spec under this preset instead of its own (a proposal: said in every output "
                   "and saved in each counterexample, so that replay rebuilds the same model).")
@click.option("--rule", "rule_pairs", multiple=True, metavar="NAME=CHOICE",
              help="Set a rule over each spec's own choice (repeatable; see `rseqcheck rules`).")
@click.option("--strict", is_flag=True,
              help="Exit 5 when every verdict is as expected but some spec has warnings (a vacuous property, "
                   "signals never sent, a handler, thread or label never reached, a rule override whose steps "
                   "never fire, a search cut by its depth bound).")
@click.option("--jobs", "-j", type=click.IntRange(1, 1024), metavar="N",
              help="Check N specs at a time in worker processes (default: this machine's cores); "
                   "results and output are those of --jobs 1, in the same order.")
@click.option("--workers", "-w", "search_workers", type=click.IntRange(1, 64), default=1, show_default=True, metavar="N",
              help="Explicit engine: search each spec with N processes, the states partitioned by hash (TLC's "
                   "-workers).  Same verdicts, counts and counterexamples as one; used by the search without "
                   "reduction (--no-por, or where partial-order reduction finds nothing to prune).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@no_cache_option
def verify(paths, engine, depth, fmt, out_dir, junit, timeout, total_timeout, max_states, max_memory, por,
           por_frozen, symmetry, bits, hash_k, window, show_trace, max_cx, preset, rule_pairs, strict, jobs,
           search_workers, quiet) -> None:
    """Check specs (files or folders) against their expected verdicts.

    Exit status: 0 every verdict as expected; 1 some verdict differs; 2 a
    spec or usage error; 3 a resource limit (timeout, --total-timeout,
    --max-states, --max-memory, Ctrl-C, SIGTERM) before a verdict; 4 an
    output error (a counterexample, --junit or stdout could not be
    written); 5 (--strict) as expected, but with warnings; 6 (--bitstate)
    as expected as far as a bitstate search can tell: no violation found,
    which is no proof."""
    if max_cx > 1 and engine in ("bmc", "induction"):
        raise Usage(f"--max-counterexamples {max_cx} needs the explicit engine (--engine explicit or all)")
    if por_frozen and (engine != "explicit" or not por):
        raise Usage("--por-frozen needs --engine explicit and --por")
    if symmetry and (engine != "explicit" or por_frozen or max_cx > 1):
        raise Usage("--symmetry needs --engine explicit, without --por-frozen or --max-counterexamples")
    if bits and (engine != "explicit" or por_frozen or symmetry or max_cx > 1):
        raise Usage("--bitstate needs --engine explicit, without --por-frozen, --symmetry or "
                    "--max-counterexamples")
    if search_workers > 1 and (engine in ("bmc", "induction") or bits or max_cx > 1):
        raise Usage("--workers needs the explicit engine's full search: not --engine bmc/induction, "
                    "--bitstate or --max-counterexamples")
    proposal = _proposal(preset, rule_pairs)
    files = _collect(paths)
    problem = _unwritable(Path(out_dir), folder=True) or (_unwritable(Path(junit), folder=False) if junit else None)
    if problem:
        report(problem)
        sys.exit(EXIT_OUTPUT)
    places, clashes = layout(paths, files, numbered=max_cx > 1)
    for folder in sorted({str(p.path(out_dir)) for p in places.values()}):
        remove_stale_tmp(Path(folder))
    said = [clash_warning(f, other, place, out_dir) for f, other, place in clashes]
    if fmt == "text":
        for w in said:
            for line in wrap(w, "", "  "):
                click.echo(line, err=True)
    more: dict = {"max_counterexamples": max_cx} if max_cx > 1 else {}
    if por_frozen:
        more["por_frozen"] = True
    if symmetry:
        more["symmetry"] = True
    if bits:
        more["bitstate"] = (bits, hash_k, window)
    if search_workers > 1:
        more["workers"] = search_workers
    if proposal:
        more["proposal"] = proposal
        if fmt == "text":
            click.echo(f"proposal: {proposal.describe()} (over each spec's own)")
    limits = Limits(timeout, max_states, max_memory, total=total_timeout).start_run()
    if max_states:
        more["max_states"] = max_states
    todo = [Job(f, places[f].stem, str(places[f].path(out_dir)), limits, engine, depth, por, more) for f in files]
    workers = min(jobs or default_jobs(), len(todo))
    outcomes: list[Outcome] = []
    io_errors: list[str] = []
    interrupted = run_over = False
    prog = None
    ticker = Ticker("verify", len(files)) if workers > 1 and not quiet else None
    with _terminate_as_interrupt(), CtrlC():
        try:
            if workers > 1:  # results in the specs' order, as with one worker
                results = run_jobs(todo, workers)
            else:
                def one_by_one():
                    nonlocal prog
                    for job in todo:
                        prog = _progress_printer(Path(job.path).stem, quiet) if fmt == "text" else None
                        got = run_job(job, prog, saving=not io_errors)  # one unwritable --out is reported once
                        _clear_progress(prog)
                        yield got
                results = one_by_one()
            for o, io_error in results:
                outcomes.append(o)
                if io_error and not (workers > 1 and io_errors):
                    io_errors.append(io_error)
                if ticker:
                    ticker(len(outcomes))
                if o.interrupted:
                    interrupted = True
                    if workers == 1:  # run_jobs yields what the other workers finished, then stops
                        break
        except KeyboardInterrupt:  # outside the search (loading, compiling, saving), or SIGTERM/SIGHUP
            _clear_progress(prog)
            interrupted = True
        except RunOver:  # --total-timeout passed before the next spec could start
            _clear_progress(prog)
            run_over = True
    if ticker:
        ticker.done()
    unchecked = not_checked(files, outcomes)
    why = (limits.run_over() if run_over else "interrupted (Ctrl-C, SIGTERM or SIGHUP)") if unchecked else ""
    code = _exit_code(outcomes, interrupted or run_over, strict)
    if junit:  # first, so that the exit status printed below is the final one
        try:
            write_atomic(Path(junit), junit_xml(outcomes, strict, unchecked, why))
        except OSError as e:
            io_errors.append(f"{junit}: cannot write the JUnit file: {e.strerror or e}")
    if io_errors and code != 2:
        code = EXIT_OUTPUT
    if fmt == "json":
        for o in outcomes:
            if o.error:
                click.echo(o.error, err=True)
        doc = {
            "tool": "rseqcheck",
            "version": __version__,
            "exit_status": code,
            "interrupted": interrupted,
            "total_timeout_reached": run_over,
            "not_checked": unchecked,
            "output_warnings": said,
            "proposal": proposal.record() if proposal else None,
            "output_errors": io_errors,
            "strict": strict,
            "summary": {"specs": len(files), "as_expected": sum(1 for o in outcomes if o.ok),
                        "warnings": sum(len(o.warnings) for o in outcomes),
                        "incomplete": sum(1 for o in outcomes if o.result and o.result.verdict == "holds"
                                          and not o.result.exhausted)},
            "results": [o.record() for o in outcomes],
        }
        click.echo(json.dumps(doc, indent=1))
    else:
        show = show_trace if show_trace is not None else len(files) == 1
        _print_text(outcomes, show)
        if interrupted or run_over:
            head = "interrupted" if interrupted else limits.run_over()
            for line in wrap(f"{head}: {len(unchecked)} of {len(files)} specs not checked", "", "  "):
                click.echo(line, err=True)
            for f in unchecked:
                click.echo(f"  not checked: {f}", err=True)
    for msg in io_errors:
        report(msg)
    sys.exit(code)


def not_checked(files: list[str], outcomes: list[Outcome]) -> list[str]:
    """The specs of `files` without an outcome: `outcomes` are some of
    them, in their order (with --jobs, specs after one not checked may
    have finished)."""
    out, k = [], 0
    for f in files:
        if k < len(outcomes) and outcomes[k].path == f:
            k += 1
        else:
            out.append(f)
    return out


def _proposal(preset: str | None, rule_pairs: tuple[str, ...]) -> Proposal:
    try:
        return Proposal(preset, parse_rules(rule_pairs))
    except ProposalError as e:
        raise Usage(str(e)) from None


def _unwritable(path: Path, folder: bool) -> str | None:
    """Why `path` (a folder to create files in, or a file to replace) cannot
    be written, found before any spec is checked; None when it looks fine.
    For --out, only what would fail for certain (a file where a folder must
    be): a run whose specs all hold writes nothing there, so a read-only
    checkout is fine until a counterexample has to be saved."""
    what = "--out" if folder else "--junit"
    if path.exists() and path.is_dir() != folder:
        return f"{path}: {what} {'is not a folder' if folder else 'is a folder'}"
    parent = path if folder else path.parent
    while not parent.exists():  # created when first written: look at what exists
        if parent.is_symlink() or parent == parent.parent:
            return f"{parent}: {what}: not a folder"
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent}: {what}: not a folder"
    if not folder and not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent}: {what}: not writable"
    return None


class _terminate_as_interrupt:
    """SIGTERM and SIGHUP end `verify` as Ctrl-C does: the specs checked so
    far are summarised, JUnit is written, temporary files are removed, exit 3."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        self.old = {}
        for s in self.SIGNALS:
            try:
                self.old[s] = signal.signal(s, self._raise)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)


def _clear_progress(prog) -> None:
    if prog and sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _exit_code(outcomes: list[Outcome], interrupted: bool, strict: bool = False) -> int:
    if any(o.error for o in outcomes):
        return 2
    if any(o.verdict not in ("unknown", NOT_PROOF) and not o.ok or o.verdict == NOT_PROOF and o.expected == "violation"
           for o in outcomes):
        return 1
    if interrupted or any(o.verdict == "unknown" or o.disagreement for o in outcomes):
        return 3
    if any(o.outcomes_check[1] and o.outcomes_check[0] is None for o in outcomes):
        return 3  # the [outcomes] search was cut: no answer for the condition
    if any(o.verdict == NOT_PROOF for o in outcomes):
        return EXIT_NOT_PROOF
    if strict and any(o.warnings for o in outcomes):
        return EXIT_WARNINGS
    return 0


def _print_text(outcomes: list[Outcome], show_trace: bool) -> None:
    for o in outcomes:
        if o.error:
            click.echo(o.error, err=True)
            continue
        r = o.result
        assert r is not None and o.spec is not None
        exp = o.expected or "holds"
        not_proof = o.verdict == NOT_PROOF and exp == "holds"  # --bitstate: as far as it can tell
        undecided = o.verdict == "unknown" or not_proof or (o.outcomes_check[0] is None and bool(o.outcomes_check[1]))
        mark = "FAIL" if not o.ok and o.verdict != "unknown" and not not_proof else ("??  " if undecided else "ok  ")
        size = (f"{r.stats.states:,} states, {r.stats.transitions:,} transitions" if r.engine == "explicit"
                else f"{r.engine}, depth {r.stats.depth}")  # the symbolic engines enumerate no states
        click.echo(f"{mark} {o.path}: {o.describe()} (expected {exp}); {size}, {r.stats.seconds:.2f} s")
        if r.bitstate is not None:
            for line in wrap(bitstate_line(r.bitstate), "     ", "       "):
                click.echo(line)
        for note in r.notes:  # a liveness verdict: what it assumed (reduction, fairness)
            for line in wrap(note, "     ", "       "):
                click.echo(line)
        for w in o.warnings:
            for line in wrap(w.text(), "     ", "       "):
                click.echo(line)
        if o.outcomes_check[1]:
            click.echo(f"     {o.outcomes_check[1]}")
        if o.disagreement:
            click.echo(f"     ENGINES DISAGREE: {o.disagreement}")
        elif o.engines:
            click.echo("     engines: " + "; ".join(f"{e}: {v}" for e, v in o.engines.items()))
        line = o.distinct_summary()
        if line:
            click.echo(f"     {line}")
        for k in range(0, len(o.files), 2):
            label = "counterexample" if k == 0 else f"counterexample {k // 2 + 1}"
            click.echo(f"     {label}: {', '.join(o.files[k:k + 2])}")
        if show_trace and o.graph is not None:
            for g in [o.graph] + o.more:
                click.echo("")
                click.echo(render_text(g))
    if len(outcomes) > 1:
        click.echo("")
        click.echo(summary_table(outcomes))
    good = sum(1 for o in outcomes if o.ok)
    warned = sum(1 for o in outcomes if o.warnings)
    more = f"; {warned} with warnings" if warned else ""
    click.echo(f"{good} of {len(outcomes)} specs as expected{more}")


def bitstate_line(c: dict) -> str:
    """A bitstate search's coverage, as SPIN reports it."""
    lost = c["expected_omissions"]
    reruns = f"; trace rebuilt with {c['reruns']} rerun{'s' * (c['reruns'] != 1)}" if c["reruns"] else ""
    return (f"bitstate: {c['bits']:,} bits, k={c['k']}, {c['states']:,} states stored, hash factor "
            f"{c['hash_factor']:,.1f} (best if > 100), {100 * c['fill']:.2g}% of the bits set; "
            f"expected omissions {lost:.2g} (new states taken for seen ones, each hiding what only it "
            f"leads to){reruns}" + ("; states were likely lost: a larger table would cover more"
                                    if lost >= 0.5 else ""))


def summary_table(outcomes: list[Outcome]) -> str:
    """One row per spec and property: what was expected, what was found."""
    rows = [("spec", "property", "expected", "verdict", "states", "time")]
    for o in outcomes:
        r = o.result
        states = f"{r.stats.states:,}" if r else "-"
        secs = f"{r.stats.seconds:.2f} s" if r else "-"
        exp = (o.expected or "holds") if o.spec else "-"
        pv = o.property_verdicts() or [("-", o.verdict)]
        for k, (prop, verdict) in enumerate(pv):
            want = o.outcomes_expected if prop == "[outcomes]" else exp
            if prop in o.vacuous:
                verdict += " (vacuous)"
            differs = verdict != want if prop == "[outcomes]" else o.verdict != exp
            if not o.ok and verdict != "not reached" and differs:
                verdict += "  <-"  # the rows that make the exit status non-zero
            rows.append((o.path if k == 0 else "", prop, want, verdict, states if k == 0 else "", secs if k == 0 else ""))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {4, 5}
    lines = []
    for r in rows:
        cells = [c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@main.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def show(trace, fmt) -> None:
    """Render a saved counterexample (ITF JSON) as text, ITF JSON, DOT or GraphML."""
    try:
        g = load_trace(trace)
    except ReplayError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    click.echo(render(g, fmt), nl=False)


@main.command()
@click.argument("traces", nargs=-1, required=True)
@click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False),
              help="The spec to replay against (default: the one named in each trace, relative to here).")
def replay(traces, spec_path) -> None:
    """Re-run saved traces (ITF JSON files, or folders of them) step by step
    against today's semantics, in one process.

    Exit 0 when every trace still reaches its violation, 1 when a step of
    some trace no longer applies (or its end no longer violates), 2 when
    some trace cannot start (2 wins over 1)."""
    files, problem = collect_specs(traces, ext=".json", what="traces")
    if problem:
        raise Usage(problem)
    code = 0
    cache: dict = {}
    for trace in files:
        try:
            report = replay_file(trace, spec_path, cache=cache)
        except ReplayError as e:
            click.echo(str(e), err=True)
            code = 2
            continue
        for w in report.warnings:
            click.echo(f"{trace}: {w}", err=True)
        click.echo(f"{trace}: {report.message}")
        for d in report.details:
            click.echo(f"  {d}")
        code = max(code, report.exit_code)
    if len(files) > 1:
        bad = code != 0
        click.echo(f"{len(files)} traces" + (": some no longer replay" if bad else ": all replay"))
    sys.exit(code)


@main.command()
@click.option("--preset", type=click.Choice(PRESETS), help="Only this preset's choices.")
@click.option("--diff", nargs=2, type=click.Choice(PRESETS), metavar="A B",
              help="Only the rules whose default differs between presets A and B.")
def rules(preset, diff) -> None:
    """List every rule, its choices, its default per preset and its source."""
    if diff:
        a, b = diff
        rows = [(r.name, r.default(a), r.default(b), r.source) for r in RULES.values() if r.default(a) != r.default(b)]
        if not rows:
            click.echo(f"{a} and {b} fix every rule the same way")
            return
        w = max(len(n) for n, *_ in rows)
        wa = max([len(a)] + [len(x) for _, x, _, _ in rows])
        click.echo(f"{'rule':<{w}}  {a:<{wa}}  {b}")
        for name, x, y, src in rows:
            click.echo(f"{name:<{w}}  {x:<{wa}}  {y}")
            for line in wrap(f"({src})", "  ", "   "):
                click.echo(line)
        return
    for r in RULES.values():
        click.echo(f"{r.name}{'  (proposal)' if r.proposal else ''}")
        if also := sorted(a for a, n in ALIASES.items() if n == r.name):
            click.echo(f"  also called: {', '.join(also)}")
        for line in wrap(f"choices: {' | '.join(r.choices)}", "  ", "    "):
            click.echo(line)
        if preset:
            click.echo(f"  {preset}: {r.default(preset)}")
        else:
            for choice, ps in _by_choice(r).items():
                for line in wrap(f"default {choice}: {', '.join(ps)}", "  ", "    "):
                    click.echo(line)
        for line in wrap(f"source: {r.source}", "  ", "    "):
            click.echo(line)
        for line in wrap(r.doc, "  ", "  "):
            click.echo(line)
        click.echo("")


def _by_choice(r) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for p in PRESETS:
        by.setdefault(r.default(p), []).append(p)
    return by


@main.command()
@click.option("--wide/--narrow", default=None,
              help="One table, a column per preset (wide), or a block per rule within 72 columns "
                   "(default: wide on a terminal wide enough for it).")
def presets(wide) -> None:
    """Rules x presets: each rule's choice on every preset."""
    w = max(len(n) for n in RULES)
    cols = [p.replace("linux-", "") for p in PRESETS]
    cw = [max(len(c), max(len(RULES[n].default(p)) for n in RULES)) for c, p in zip(cols, PRESETS)]
    if not want_wide(wide, w + 2 + sum(x + 2 for x in cw)):
        for line in wrap("eras: " + ", ".join(f"{c} {ERA[p]}" for c, p in zip(cols, PRESETS)), "", "  "):
            click.echo(line)
        for n, r in RULES.items():
            click.echo("")
            click.echo(n)
            by = _by_choice(r)
            cw1 = max(len(c) for c in by)  # the choices some preset takes
            for choice, ps in by.items():
                for line in wrap(" ".join(p.replace("linux-", "") for p in ps), f"  {choice:<{cw1}}  ",
                                 " " * (cw1 + 4)):
                    click.echo(line)
        return
    click.echo(f"{'rule':<{w}}  " + "  ".join(f"{c:<{x}}" for c, x in zip(cols, cw)).rstrip())
    click.echo(f"{'era':<{w}}  " + "  ".join(f"{ERA[p]:<{x}}" for p, x in zip(PRESETS, cw)).rstrip())
    for n in RULES:
        click.echo(f"{n:<{w}}  " + "  ".join(f"{RULES[n].default(p):<{x}}" for p, x in zip(PRESETS, cw)).rstrip())


@main.command()
def properties() -> None:
    """List the built-in properties (and the polarity words for user ones)."""
    for p in PROPERTIES.values():
        click.echo(p.name + ("  (liveness, under [fairness])" if p.kind == "progress" else ""))
        for line in wrap(p.doc, "  ", "  "):
            click.echo(line)
        for line in wrap(f"from: {p.seed}", "  ", "    "):
            click.echo(line)
        click.echo("")
    click.echo("always EXPR | eventually EXPR | sometimes EXPR")
    click.echo("  Over global user variables and per-CPU slots: an invariant; every")
    click.echo("  fair run reaches EXPR (liveness); some reachable state satisfies it.")


from rseqcheck.checker.cli.conformance import COMMANDS as _conformance  # noqa: E402  (outcomes, run)
from rseqcheck.checker.cli.proposals import COMMANDS as _proposals  # noqa: E402  (impact)
from rseqcheck.checker.cli.swarm import swarm_cmd as _swarm  # noqa: E402
from rseqcheck.checker.cli.sweep import COMMANDS as _sweep  # noqa: E402  (sweep, on Dask)

for _cmd in (*_conformance, *_proposals, *_sweep, _swarm):
    main.add_command(_cmd)


if __name__ == "__main__":
    main()
