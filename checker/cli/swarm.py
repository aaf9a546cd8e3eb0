"""`rseqcheck swarm SPEC`: swarm search (checker/engines/swarm.py) for a spec
whose state space is too big to exhaust, then the violation minimised,
saved like verify's counterexamples, and replayable.

Exit status: 0 as expected -- the spec expects holds and no violation was
found (not a proof), or it expects a violation and one was found; 1 not as
expected -- a violation of a spec that expects holds, or none found for a
spec that expects a violation; 2 a spec or usage error; 3 interrupted (Ctrl-C,
SIGTERM) before any violation, or every task lost; 4 the counterexample
could not be written.  2 wins over 4, 4 over 1, 1 over 3.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.checker.engines.swarm import Minimised, SwarmResult, minimise, plan, swarm, trace_of
from rseqcheck.checker.limits import check_size
from rseqcheck.checker.outputs.columns import wrap
from rseqcheck.checker.outputs.trace import render_text
from rseqcheck.checker.parallel import default_jobs
from rseqcheck.checker.verify import Outcome, SpecSystem, model_error, save_counterexample, trace_graph
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import ModelError, System
from rseqcheck.model.spec import load_spec

TASK_STATES = 1_000_000  # distinct states one task keeps (about 100 MB)


def _echo_wrapped(text: str, first: str = "", rest: str = "  ") -> None:
    for line in wrap(text, first, rest):
        click.echo(line)


@click.command("swarm")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--workers", "-w", type=click.IntRange(1, 1024), metavar="N",
              help="Local worker processes (default: this machine's cores); with --scheduler, "
                   "only used to plan the tasks.")
@click.option("--seeds", type=click.IntRange(1, 100000), metavar="N",
              help="Diversified searches to run (default: 4 per worker).")
@click.option("--budget", type=click.FloatRange(0.1), default=60.0, show_default=True, metavar="SECONDS",
              help="Wall time for the whole swarm; each search gets budget x workers / seeds.")
@click.option("--depth", type=click.IntRange(1, 100000), help="Override the spec's [check] depth.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the searches on a Dask cluster (tcp://host:8786), or 'local' for a Dask "
                   "LocalCluster of --workers processes.")
@click.option("--seed", "base_seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the plan: the same seed, the same searches.")
@click.option("--max-states", type=click.IntRange(1), default=TASK_STATES, show_default=True, metavar="N",
              help="Distinct states each search keeps (a DFS stops there).")
@click.option("--minimise-budget", type=click.FloatRange(0), metavar="SECONDS",
              help="Time to shorten a violation (default: --budget); 0: keep the swarm's trace.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="counterexamples", show_default=True)
@click.option("--show-trace/--no-show-trace", default=True, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def swarm_cmd(spec_path, workers, seeds, budget, depth, scheduler, base_seed, max_states, minimise_budget,
              out_dir, show_trace, quiet) -> None:
    """Swarm search: many randomised bounded searches (DFS with shuffled
    successor orders, random walks) in parallel, stopping at the first
    violation, which is minimised by BFS around it and saved (it replays).
    "No violation found" is not a proof: use `verify` for one.

    Exit status: 0 as expected (holds: no violation found, not a proof;
    violation: one found); 1 not as expected; 2 a spec or usage error;
    3 interrupted before a violation; 4 an output error."""
    # checker.cli imports this module to register the command: its names here
    from rseqcheck.checker.cli.app import EXIT_OUTPUT, _clear_progress, _terminate_as_interrupt, _unwritable
    try:
        spec = load_spec(spec_path)
        check_size(spec)
        system = build_system(spec)
    except SpecError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    except ModelError as e:
        click.echo(model_error(spec_path, e, None), err=True)
        sys.exit(2)
    if system.goals:
        line = spec.lines.get(("check", "properties"))
        names = ", ".join(dict.fromkeys(g.name for g in system.goals))
        click.echo(str(SpecError(spec_path, line, f"swarm searches invariants only, not liveness or "
                                 f"reachability ({names}); use rseqcheck verify")), err=True)
        sys.exit(2)
    problem = _unwritable(Path(out_dir), folder=True)
    if problem:
        click.echo(problem, err=True)
        sys.exit(EXIT_OUTPUT)
    workers = workers or default_jobs()
    seeds = seeds or 4 * workers
    bound = depth or spec.depth
    per_task = max(0.1, budget * min(workers, seeds) / seeds)
    tasks = plan(seeds, bound, per_task, max_states, base_seed)
    expect = spec.expect or "holds"
    _echo_wrapped(f"swarm {spec_path}: {seeds} searches on {workers} worker{'s' if workers != 1 else ''}, "
                  f"{per_task:.1f} s each, depth bound {bound} (expected {expect})")
    if spec.outcomes is not None:
        click.echo("  note: [outcomes] is not checked by swarm (verify computes it)")
    factory = SpecSystem(spec_path, spec.hash)
    t0 = time.monotonic()
    shown = [False]

    def progress(res: SwarmResult, left: int) -> None:
        if quiet:
            return
        lo, _ = res.covered
        line = (f"swarm: {len(res.reports)} of {res.planned} searches done, {left} left, "
                f">= {lo:,} states, {time.monotonic() - t0:.0f} s")
        shown[0] = True
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    with _terminate_as_interrupt():
        executor, close = _executor(scheduler, workers)
        try:
            res = swarm(factory, tasks, executor, workers, progress, progress_every=1.0 if sys.stderr.isatty()
                        else 10.0)
        finally:
            close()
        if shown[0]:
            _clear_progress(True)
        _summary(res)
        if res.found is None:
            code = _no_violation(res, expect)
            sys.exit(code)
        m = _minimise(system, res, minimise_budget if minimise_budget is not None else budget)
    code = 0 if expect == "violation" else 1
    sys.exit(_save(spec, system, res, m, bound, out_dir, show_trace, code))


def _executor(scheduler: str | None, workers: int):
    """(executor or None for a local pool, a function that closes it).
    As `sweep` does (checker/sweep.py:stream): Ctrl-C held while a
    LocalCluster starts, its dashboard on a free port, and its workers
    killed at the end, since searches still busy would hold up close()
    until their budget runs out."""
    from rseqcheck.checker.cli.app import Usage

    if not scheduler:
        return None, lambda: None
    import logging
    import os
    import signal

    from distributed import Client, LocalCluster
    from rseqcheck.checker.sweep import _held_signals, _quiet_dask

    try:
        with _held_signals():
            if scheduler == "local":
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.CRITICAL)
                client = Client(cluster)
            else:
                cluster, client = None, Client(scheduler, timeout=10)
    except (OSError, TimeoutError) as e:
        raise Usage(f"--scheduler {scheduler}: cannot connect: {e}") from None
    # The first violation cancels the searches still running: what Dask and
    # the event loop in this process log about them is noise, with
    # tracebacks (a search that fails reaches the report as a lost one).
    _quiet_dask()

    def close() -> None:
        client.close()
        if cluster is not None:
            for nanny in cluster.workers.values():
                if getattr(nanny, "pid", None):
                    os.kill(nanny.pid, signal.SIGKILL)
            cluster.close()

    return client.get_executor(), close


def _summary(res: SwarmResult) -> None:
    lo, hi = res.covered
    walks = sum(r.walks for r in res.reports)
    steps = sum(r.steps for r in res.reports)
    done = f"{len(res.reports)} of {res.planned} searches finished"
    if res.found:
        done += f"; {res.found.task.describe()} found a violation"
    elif res.interrupted:
        done += "; interrupted"
    _echo_wrapped(f"{done}, {res.seconds:.1f} s, {steps:,} steps, {walks:,} walks")
    _echo_wrapped(f"states covered: at least {lo:,} (the largest search's own count; the union "
                  f"is at most {hi:,}, their sum): a sample, not a proof", "  ", "    ")
    for e in res.errors[:5]:
        _echo_wrapped(f"lost {e}", "  ", "    ")


def _no_violation(res: SwarmResult, expect: str) -> int:
    if res.interrupted or (res.lost and not res.reports):
        click.echo("interrupted: no violation found so far (not a proof)" if res.interrupted
                   else "every search was lost: no result", err=res.interrupted)
        return 3
    click.echo("no violation found (not a proof)")
    if expect == "violation":
        click.echo("NOT AS EXPECTED: the spec expects a violation (try a larger --budget or --seeds)")
        return 1
    return 0


def _minimise(system: System, res: SwarmResult, seconds: float) -> Minimised:
    f = res.found
    assert f is not None
    if seconds <= 0:
        return Minimised(f.prop, list(f.actions), list(f.states_path), len(f.actions), False)
    _echo_wrapped(f"minimising the {len(f.actions)}-step trace (dropping steps, then BFS around it; "
                  f"{seconds:g} s at most)...")
    m = minimise(system, f.prop, list(f.actions), list(f.states_path), seconds=seconds)
    if m.dropped >= 0:
        click.echo(f"  loops cut and steps dropped: {m.dropped} steps")
    for r, n, steps in m.rounds:
        click.echo(f"  tube radius {r}: {n:,} states searched, {steps} steps")
    return m


def _save(spec, system: System, res: SwarmResult, m: Minimised, bound: int, out_dir: str, show_trace: bool,
          code: int) -> int:
    from rseqcheck.checker.cli.app import EXIT_OUTPUT
    from rseqcheck.checker.engines.compile import compile_packed

    pk = compile_packed(system)
    name = system.properties[m.prop].name
    proof = "shortest (a BFS with nothing pruned found none shorter)" if m.shortest else (
        "not proved shortest" + (f" ({m.stopped})" if m.stopped else " (BFS around the trace only)"))
    f = res.found
    assert f is not None
    note = (f"found by swarm search ({f.task.describe()}), {m.before} steps; minimised to "
            f"{len(m.actions)}: {proof}")
    result = SearchResult("violation", "swarm", Stats(res.covered[0], 0, len(m.actions), res.seconds), bound,
                          prop=name, trace=trace_of(pk, m.actions, m.states), shortest=m.shortest)
    out = Outcome(spec.path, spec=spec, system=system, result=result)
    out.graph = trace_graph(system, spec, result, notes=[note])
    verdict = f"violation of {name} at depth {len(m.actions)}"
    mark = "ok  " if code == 0 else "FAIL"
    _echo_wrapped(f"{mark} {spec.path}: {verdict} (expected {spec.expect or 'holds'})")
    _echo_wrapped(note, "     ", "       ")
    try:
        files = save_counterexample(out, Path(out_dir))
    except OSError as e:
        click.echo(f"{out_dir}: cannot write the counterexample: {e.strerror or e}", err=True)
        return EXIT_OUTPUT
    _echo_wrapped(f"counterexample: {', '.join(files)}", "     ", "       ")
    if show_trace:
        click.echo("")
        click.echo(render_text(out.graph))
    return code
