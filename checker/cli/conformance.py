"""`rseqcheck outcomes` and `rseqcheck run`: the model's observable outcomes
(herd7-style) and their comparison with the real kernel (klitmus7-style).

Exit status: 0 as expected; 1 the [outcomes] condition's answer in the
model is not the one its `expect` says (`outcomes`; default: it must hold) or a run observed an outcome the model forbids (`run`); 2 a
spec or usage error, or a scenario the generator cannot drive faithfully
here; 3 a resource limit (state limit, runs that never ended).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rseqcheck.checker.conformance.backports import auto_preset
from rseqcheck.checker.conformance.cgen import Unsupported, generate
from rseqcheck.checker.conformance.host import HostRefused, host_preset
from rseqcheck.checker.conformance.run import Refused, RunResult, TooLong, run_spec
from rseqcheck.checker.inputs import collect_specs
from rseqcheck.checker.limits import LimitHit, Limits, Seconds, Watchdog
from rseqcheck.checker.outcomes import Outcome, OutcomeSet, check_condition, eval_condition, model_outcomes
from rseqcheck.checker.outputs.columns import WIDTH, wrap
from rseqcheck.checker.outputs.errors import broken_pipe, stdout_failed
from rseqcheck.checker.outputs.errors import fail as output_error
from rseqcheck.checker.proposal import ProposalError, parse_rules
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import ModelError
from rseqcheck.model.rules import PRESETS
from rseqcheck.model.spec import Spec, load_spec


def _echo(text: str, indent: str = "", sub: str = "  ") -> None:
    """One line of the report, wrapped at 72 columns."""
    for line in wrap(text, indent, sub):
        click.echo(line)


def _fail(msg: str, status: int = 2) -> None:
    click.echo(msg, err=True)
    sys.exit(status)


def _at_line(path, what: str, e: Exception) -> str:
    """`file:line: what: ...` when the generator named the line ("line N:
    ..."), as spec errors are written; else `file: what: ...`."""
    m = re.match(r"line (\d+): (.*)", str(e), re.S)
    return f"{path}:{m.group(1)}: {what}: {m.group(2)}" if m else f"{path}: {what}: {e}"


def _guarded(fn: Callable) -> Callable:
    """As `verify` does: a bug in rseqcheck is one line (RSEQCHECK_DEBUG=1
    shows the traceback), Ctrl-C is exit 3."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("interrupted", 3)
        except Exception as e:
            if os.environ.get("RSEQCHECK_DEBUG") or stdout_failed(e) or broken_pipe(e):  # checker.outputs.Group
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (a bug in rseqcheck, not in the spec; "
                  "RSEQCHECK_DEBUG=1 shows the traceback)")

    return wrapper


def _rules(pairs: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_rules(pairs)
    except ProposalError as e:
        _fail(str(e))
        raise  # unreachable


def _load(path: str) -> Spec:
    try:
        return load_spec(path)
    except SpecError as e:
        _fail(str(e))
        raise  # unreachable


def _model(spec: Spec, rules: dict[str, str], max_states: int, timeout: float | None) -> OutcomeSet:
    try:
        return model_outcomes(spec, rules, max_states=max_states, timeout=timeout)
    except SpecError as e:
        _fail(str(e))
    except ModelError as e:
        _fail(f"{spec.path}: model error: {e}")
    raise AssertionError


def _with_preset(spec: Spec, preset: str | None) -> Spec:
    """`--preset host`: the preset of this machine's kernel (checker/conformance/host.py),
    said on one line; `--preset NAME`: that preset.  Spec rules still apply."""
    if preset is None:
        return spec
    if preset == "host":
        try:
            hp = host_preset()
        except HostRefused as e:
            _fail(f"--preset host: refused: {e}")
            raise  # unreachable
        click.echo(f"Preset host: {hp.describe()}")
        preset = hp.preset
    return dataclasses.replace(spec, preset=preset)


def _rule_note(spec: Spec, rules: dict[str, str]) -> str:
    changed = {**spec.rules, **rules}
    return f" [{', '.join(f'{k}={v}' for k, v in changed.items())}]" if changed else ""


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--rule", "rule_pairs", multiple=True, metavar="NAME=CHOICE", help="Override a rule (repeatable).")
@click.option("--max-states", type=click.IntRange(1), default=2_000_000, show_default=True)
@click.option("--timeout", type=Seconds(), help="Seconds before giving up (exit 3).")
@click.option("--preset", type=click.Choice(["host", *PRESETS]), metavar="host|PRESET",
              help="Compare with this preset instead of the spec's; host: the one of this machine's kernel "
                   "(uname -r, the nearest preset at or below it).")
@_guarded
def outcomes(spec_path, rule_pairs, max_states, timeout, preset) -> None:
    """Every outcome the model allows for SPEC, herd7-style.

    An outcome is how the process ends (`exit` when every thread exited,
    `killed by SIGx`, `stuck`) and the final values of the user variables of
    `store`/`add`, e.g. `exit; a=1 h=1`; each is listed with the number of
    final states that show it (full search, no reduction, no depth bound).

    \b
    The spec may state one condition in an [outcomes] table:
      exists = "EXPR"    some allowed outcome satisfies EXPR
      forall = "EXPR"    every allowed outcome does
    EXPR is an assert expression (== != < <= > >= && || ! + - parentheses)
    over user variables and `end`, compared with `exit`, `stuck` or a signal
    name (killed by it): exists = "end == SIGSEGV && a == 0".
    It is reported Ok or No; exit status 1 when that is not what the
    table's `expect` says ("holds", the default, or "fails": herd7's
    ~exists is exists with expect = "fails")."""
    spec = _load(spec_path)
    rules = _rules(rule_pairs)
    spec = _with_preset(spec, preset)
    try:
        with Watchdog(Limits(timeout)):  # building and compiling count too (checker/limits.py)
            res = _model(spec, rules, max_states, timeout)
    except (LimitHit, MemoryError) as e:
        _fail(f"{spec.path}: {e.reason if isinstance(e, LimitHit) else 'out of memory'} before the outcomes were listed", 3)
    finals = sum(res.counts.values())
    _echo(f"Test {spec.name} ({spec.preset}{_rule_note(spec, rules)})")
    _echo(f"Outcomes {len(res.counts)} ({finals:,} final states of {res.states:,} states, "
          f"{res.transitions:,} transitions, {res.seconds:.2f} s)")
    w = max([len(f"{c:,}") for c in res.counts.values()] + [1])
    for o in sorted(res.counts):
        _echo(str(o), f"  {res.counts[o]:>{w},}  ", " " * (w + 6))
    if not res.complete:
        _fail(f"incomplete: {res.reason}; the list above is partial", 3)
    chk = check_condition(spec, res.allowed)
    if chk is None:
        return
    pos = sum(c for o, c in res.counts.items() if eval_condition(spec.outcomes.expr, o))
    click.echo("Ok" if chk.ok else "No")
    _echo(f"Condition {chk.kind} ({chk.text})")
    click.echo(f"Witnesses: Positive {pos:,} Negative {finals - pos:,}")
    want_ok = spec.outcomes.expect == "holds"
    if want_ok != chk.ok:  # herd7's Ok/No against the spec's expectation
        if want_ok:
            what = "no allowed outcome satisfies it" if chk.kind == "exists" else \
                "allowed outcomes violate it: " + "; ".join(f"[{o}]" for o in chk.witnesses[:4])
            click.echo(f"{spec.path}: [outcomes] {chk.kind} does not hold in the model ({what})", err=True)
        else:
            click.echo(f"{spec.path}: [outcomes] {chk.kind} holds in the model, but the spec expects it "
                       "to fail (expect = \"fails\")", err=True)
        sys.exit(1)


@click.command()
@click.argument("spec_path", metavar="SPEC|FOLDER", type=click.Path(exists=True))
@click.option("--runs", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--rule", "rule_pairs", multiple=True, metavar="NAME=CHOICE",
              help="Override a rule of the model the runs are compared with (repeatable).")
@click.option("--spin", type=click.IntRange(0), default=200000, show_default=True,
              help="Busy-loop iterations of each `nop` (0: a plain nop), so that signals land inside sections.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the signal schedule.")
@click.option("--window-us", type=click.FloatRange(0, min_open=True),
              help="Signals are sent at random within this many µs of a run's start (default: calibrated).")
@click.option("--emit-c", type=click.Path(dir_okay=False), help="Write the generated C program here and stop.")
@click.option("--max-states", type=click.IntRange(1), default=2_000_000, show_default=True)
@click.option("--preset", type=click.Choice(["host", "auto", *PRESETS]), metavar="host|auto|PRESET",
              help="Compare with this preset instead of the spec's; host: the one of this machine's kernel "
                   "(uname -r, the nearest preset at or below it); auto: the kernel's exact version, "
                   "stable backports included (checker/conformance/backports.py; the default with --kernel).")
@click.option("--kernel", "kernel_names", multiple=True, metavar="VERSION|PATH|host",
              help="Boot this kernel under QEMU and run there (6.1, 6.12: fetched with `rseqcheck kernels "
                   "fetch`; a bzImage or vmlinux path; host: this machine). Repeatable.")
@click.option("--kernels", "kernel_list", metavar="A,B,...", help="Several kernels, comma-separated.")
@click.option("--smp", type=click.IntRange(1, 64), default=2, show_default=True, help="Guest CPUs.")
@click.option("--accel", type=click.Choice(["tcg", "kvm"]), default="tcg", show_default=True)
@click.option("--timeout", type=Seconds(), help="Seconds a guest may take (default: 120 + 0.5 per run).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write the histograms, one column per "
              "kernel, as a Markdown table.")
@_guarded
def run(spec_path, runs, rule_pairs, spin, seed, window_us, emit_c, max_states, preset, kernel_names, kernel_list,
        smp, accel, timeout, markdown) -> None:
    """Run the scenario of SPEC (or of every spec in FOLDER) RUNS times on
    this machine's kernel, or on other kernels booted under QEMU
    (--kernel, --kernels), and compare the observed outcomes with those
    the model allows (exit 1 on a forbidden one).

    Every code block (threads and handlers) becomes x86-64 asm with real
    struct rseq_cs descriptors (RSEQ_SIG before each abort label) under
    glibc's registration, or none with glibc_rseq = false; rseq() calls,
    SUD (prctl), own TF, ptrace single-stepping (the runner is the tracer),
    threads, clone, membarrier_rseq and dlclose are real.  The parent sends
    the environment's signals at random times and feeds the pipe `syscall
    read` sleeps on.  set_desc, assert, seccomp, PTRACE_SYSCALL, fork and
    execve are refused (exit 2), as is a kernel whose preset is not the
    spec's (see --preset host, auto).  docs/conformance.md has the details."""
    rules = _rules(rule_pairs)
    kernels = [*kernel_names, *(k.strip() for k in (kernel_list or "").split(",") if k.strip())]
    if os.path.isdir(spec_path) or kernels:
        if emit_c:
            _fail("--emit-c takes one spec and no --kernel")
        if preset == "host" and kernels:
            _fail("--preset host is this machine's preset; with --kernel use auto (the default) or a preset name")
        files, problem = collect_specs((spec_path,))
        if problem:
            _fail(problem)
        specs = [_load(f) for f in files]
        status = run_matrix(specs, kernels or ["host"], runs, rules, spin, seed, window_us, max_states,
                            preset or "auto", smp, accel, timeout, markdown)
        sys.exit(status)
    spec = _load(spec_path)
    if preset == "auto":
        spec, auto = _with_auto(spec, platform.release(), platform.version())
        rules = {**auto, **rules}
    else:
        spec = _with_preset(spec, preset)
    if emit_c:
        try:
            build_system(spec)  # the model's own spec errors (undeclared thread or range) first, as for a run
        except SpecError as e:
            _fail(str(e))
        except ModelError as e:
            _fail(f"{spec.path}: model error: {e}")
        try:
            Path(emit_c).write_text(generate(spec, spin=spin).source)
        except Unsupported as e:
            _fail(_at_line(spec.path, "cannot generate", e))
        except SpecError as e:  # a spec with data builds the model first (checker/conformance/cgen_data.py)
            _fail(str(e))
        except OSError as e:  # an output error, as for `verify` (exit 4)
            output_error(f"{emit_c}: cannot write: {e.strerror or e}")
        click.echo(f"wrote {emit_c} (build: gcc -O1 -o prog {emit_c}; run: ./prog RUNS SEED WINDOW_US)")
        return
    try:
        _model(spec, rules, max_states, None)  # spec errors before any run
        r = run_spec(spec, runs, rules=rules, spin=spin, seed=seed, window_us=window_us,
                     check_machine=preset != "auto")
    except Unsupported as e:
        _fail(_at_line(spec.path, "cannot run faithfully", e))
    except Refused as e:
        _fail(f"{spec.path}: refused: {e}")
    except TooLong as e:
        _fail(f"{spec.path}: {e}", 3)
    except SpecError as e:
        _fail(str(e))
    sys.exit(_report(spec, rules, r))


def _with_auto(spec: Spec, release: str, uname_v: str) -> tuple[Spec, dict[str, str]]:
    """`--preset auto`: the kernel's preset and the backports it carries."""
    ap = auto_preset(release, uname_v)
    if ap is None:
        _fail(f"--preset auto: refused: kernel {release} is older than every preset (oldest: {PRESETS[0]})")
        raise AssertionError
    _echo(f"Preset auto: {ap.describe()}")
    return dataclasses.replace(spec, preset=ap.preset), ap.rules


def _report(spec: Spec, rules: dict[str, str], r: RunResult) -> int:
    """Print one run's histogram; its exit status (0, 1 forbidden, 2 failed runs, 3 hung)."""
    m = r.model
    _echo(f"Run {spec.name} on Linux {r.kernel}: {r.runs:,} runs (seed {r.seed}), events within "
          f"{r.window_us:.1f} us of each start; model {spec.preset}{_rule_note(spec, rules)}, "
          f"{len(m.counts)} allowed outcomes")
    rows: list[tuple[int, str, Outcome, str]] = []
    for o, n in r.observed.items():
        rows.append((n, str(r.preempted[o]) if r.preempted[o] else "", o,
                     "allowed" if o in m.counts else "FORBIDDEN by the model"))
    for o in r.unobserved:
        rows.append((0, "", o, "allowed, not observed"))
    rows.sort(key=lambda x: (-x[0], x[2]))
    w = max(len(f"{r.runs:,}"), 4)
    # runs, preempted, then the verdict; the outcome below it when the row
    # would pass 72 columns
    click.echo(f"  {'runs':>{w}}  {'preempted':>9}  outcome")
    width = max(len(str(x[2])) for x in rows) if rows else 0
    one_line = 2 + w + 2 + 9 + 2 + width + 2 + len("allowed, not observed") <= WIDTH
    for n, pre, o, what in rows:
        if one_line:
            click.echo(f"  {n:>{w},}  {pre:>9}  {str(o):<{width}}  {what}")
        else:
            click.echo(f"  {n:>{w},}  {pre:>9}  {what}")
            _echo(str(o), " " * (w + 15), " " * (w + 17))
    env = spec.env
    if r.excluded:
        n = sum(r.excluded.values())
        _echo(f"excluded: {n:,} runs with an involuntary context switch (the spec has no preemption): "
              + ", ".join(f"{c:,} [{o}]" for o, c in sorted(r.excluded.items())), "  ", "    ")
    if not env.notify_resume:
        _echo("note: the spec's environment has no notify_resume; this kernel raises one about every "
              "100 ms in the background (conformance RESULTS.md), which can explain an outcome the model "
              "forbids", "  ", "    ")
    if spec.outcomes is not None:
        chk = check_condition(spec, m.allowed)
        sat = sum(n for o, n in r.observed.items() if eval_condition(spec.outcomes.expr, o))
        total = sum(r.observed.values())
        seen = "Always" if sat == total and total else ("Never" if sat == 0 else "Sometimes")
        assert chk is not None
        _echo(f"Condition {chk.kind} ({chk.text}): model {'Ok' if chk.ok else 'No'}; "
              f"observed {seen} ({sat:,} of {total:,} runs)")
    if r.errors:
        click.echo(f"{spec.path}: {len(r.errors)} runs failed to start the scenario ({r.errors[0]})", err=True)
        return 2
    bad = r.forbidden
    if bad:
        for o in bad:
            _echo(f"No: observed {r.observed[o]:,} runs ending [{o}], an outcome the model forbids")
        return 1
    if r.hung:
        click.echo(f"?? {r.hung} runs did not end within 10 s (killed, not counted)")
        return 3
    _echo(f"Ok: every observed outcome is allowed by the model ({len(r.unobserved)} allowed ones not observed)")
    return 0


from rseqcheck.checker.cli.kernels import kernels, run_matrix  # noqa: E402  (needs _report)

COMMANDS = (outcomes, run, kernels)
