"""`rseqcheck sweep`: the matrix (checker/sweep.py) on Dask, and its one
table, JSON document and JUnit file.

Exit status: 0 every run has a verdict, and every own run (a spec under
its own model) the one it expects; 1 some own run's verdict differs from
`expect`; 2 a usage or matrix-file error, a spec that cannot be loaded, an
own run that cannot be built, or a scheduler that cannot be reached; 3 a
run without a verdict (a limit, a lost worker, engines disagreeing) or
runs not run (Ctrl-C, SIGTERM); 4 an output error.  2 wins over 4, 4 over
1, 1 over 3, as for `verify`.  A spec that cannot be built under another
preset (a feature that kernel lacks) is listed as such and changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import click
from rseqcheck.checker import __version__
from rseqcheck.checker.inputs import collect_specs, remove_stale_tmp
from rseqcheck.checker.limits import Limits, Seconds
from rseqcheck.checker.outputs.columns import WIDTH, wrap
from rseqcheck.checker.outputs.errors import EXIT_OUTPUT, error_line, fail, report
from rseqcheck.checker.outputs.layout import clash_warning, layout
from rseqcheck.checker.outputs.progress import Ticker
from rseqcheck.checker.parallel import default_jobs
from rseqcheck.checker.proposal import ProposalError
from rseqcheck.checker.sweep import (
    Combination,
    Matrix,
    Run,
    is_own,
    jobs_for,
    load_matrix,
    parse_depths,
    parse_presets,
    parse_rule_axis,
    stream,
)
from rseqcheck.checker.verify import ENGINES, Outcome, junit_xml, save_counterexample, write_atomic
from rseqcheck.model.errors import SpecError
from rseqcheck.model.spec import load_spec


@dataclasses.dataclass
class Done:
    """A finished run."""

    run: Run
    combo: Combination
    outcome: Outcome
    own: bool  # the spec's own model: its verdict is compared with `expect`

    @property
    def differs(self) -> bool:
        o = self.outcome
        return self.own and o.verdict not in ("unknown", "error") and not o.ok

    def verdict(self) -> str:
        """The verdict in a few words."""
        o = self.outcome
        if o.error:
            return "spec error" if o.spec is None else "cannot be built"
        r = o.result
        assert r is not None
        if r.verdict == "violation":
            what = f"violation of {r.goal or r.prop}"
            text = what + (f" ({len(r.trace) - 1} steps)" if r.trace else "")
        elif r.verdict == "holds":
            text = "holds" if r.exhausted else f"holds to depth {r.bound}"
        else:
            text = f"unknown: {r.reason}"
        return text + (" (engines disagree)" if o.disagreement else "")

    def label(self, k: int) -> str:
        return f"{self.run.spec} [c{k + 1}: {self.combo.describe()}]"

    def record(self, k: int) -> dict:
        return {"run": self.label(k), "combination": {"id": f"c{k + 1}", **self.combo.record()},
                "own": self.own, "differs": self.differs, **self.outcome.record()}


def exit_code(done: list[Done], complete: bool) -> int:
    outs = [d.outcome for d in done]
    if any(o.error and (o.spec is None or d.own) for d, o in zip(done, outs)):
        return 2
    if any(d.differs for d in done):
        return 1
    if not complete or any(o.verdict == "unknown" or o.disagreement for o in outs):
        return 3
    return 0


def table(done: list[Done], combos: list[Combination], not_run: list[tuple[Run, Combination]]) -> str:
    """One block per spec, one row per combination: verdict, states, time;
    `*` marks a spec's own run, `<-` one whose verdict is not its expect.
    Within WIDTH columns: a verdict too long for its column gets its line."""
    lines = ["combinations (* a spec's own model, checked against its expect):"]
    for k, c in enumerate(combos):
        lines += wrap(f"c{k + 1}  {c.describe()}", "  ", "      ")
    rows: dict[str, list[tuple[str, str, str, str]]] = {}
    for d in done:
        k = combos.index(d.combo)
        r = d.outcome.result
        verdict = d.verdict() + (f"  <- expected {d.outcome.expected or 'holds'}" if d.differs else "")
        states = f"{r.stats.states:,}" if r and r.engine == "explicit" else ""
        secs = f"{r.stats.seconds:.2f} s" if r else ""
        rows.setdefault(d.run.spec, []).append((f"c{k + 1}" + ("*" if d.own else ""), verdict, states, secs))
    for run, c in not_run:
        rows.setdefault(run.spec, []).append((f"c{combos.index(c) + 1}", "not run", "", ""))
    every = [r for rs in rows.values() for r in rs]
    if not every:
        return "\n".join(lines)
    w0, w2, w3 = (max(len(r[i]) for r in every) for i in (0, 2, 3))
    w1 = min(max(len(r[1]) for r in every), WIDTH - 2 - w0 - 2 - 2 - w2 - 2 - w3)
    for spec, rs in rows.items():
        lines.append("")
        lines += wrap(spec, "")
        for c, verdict, states, secs in rs:
            nums = f"{states:>{w2}}  {secs:>{w3}}".rstrip()
            if len(verdict) <= w1:
                lines.append(f"  {c:<{w0}}  {verdict:<{w1}}  {nums}".rstrip())
            else:
                lines += wrap(verdict, f"  {c:<{w0}}  ", " " * (w0 + 6))
                if nums.strip():
                    lines.append(f"  {'':<{w0}}  {'':<{w1}}  {nums}".rstrip())
    return "\n".join(lines)


def summary(done: list[Done], total: int) -> str:
    by: dict[str, int] = {}
    for d in done:
        v = d.outcome.verdict
        by[v] = by.get(v, 0) + 1
    counts = ", ".join(f"{by.get(v, 0)} {v}" for v in ("holds", "violation", "unknown", "error"))
    differ = sum(1 for d in done if d.differs)
    text = f"{len(done)} of {total} runs done: {counts}"
    return text + (f"; {differ} own run{'s' if differ != 1 else ''} not as expected" if differ else "")


def junit(done: list[Done], combos: list[Combination], not_run: list[tuple[Run, Combination]]) -> str:
    """checker/verify.py:junit_xml over the runs, each suite named by its
    run (spec and combination), the runs not done listed as not checked,
    so that the file lists every run of the matrix."""
    renamed = [dataclasses.replace(d.outcome, path=d.label(combos.index(d.combo))) for d in done]
    unchecked = [Done(r, c, Outcome(r.spec), False).label(combos.index(c)) for r, c in not_run]
    root = ET.fromstring(junit_xml(renamed, not_checked=unchecked, why="the sweep was interrupted").split("\n", 1)[1])
    for d, suite in zip(done, root.findall("testsuite")):
        ET.SubElement(suite.find("properties"), "property", name="own_model", value=str(d.own).lower())
        if d.own:
            continue
        # not the spec's own kernel: its `expect` does not apply, the verdict is a finding,
        # and a spec that kernel cannot build is skipped there (as the exit status has it)
        for tc in suite.findall("testcase"):
            for f in tc.findall("failure") + tc.findall("error"):
                if f.tag == "failure" and f.get("type") in ("verdict", "outcomes"):
                    _count(f.tag, -1, suite, root)
                elif f.tag == "error" and f.get("type") == "spec-error" and d.outcome.spec is not None:
                    _count(f.tag, -1, suite, root)
                    ET.SubElement(tc, "skipped", message=f"cannot be built: {f.get('message')}")
                    _count("skipped", 1, suite)  # <testsuites> has no skipped count (junit-10.xsd)
                else:
                    continue
                tc.remove(f)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _n(k: int, what: str) -> str:
    return f"{k} {what}{'s' if k != 1 else ''}"


def _count(tag: str, by: int, *els: ET.Element) -> None:
    key = {"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]
    for el in els:
        el.set(key, str(int(el.get(key, "0")) + by))


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--matrix", "matrix_file", metavar="FILE",
              help="A TOML matrix (docs/sweep.md): specs, presets, rules, depths, engine; options given here "
                   "replace its keys.")
@click.option("--preset", "presets", metavar="A,B|all", help="Presets to run every spec under (default: each "
              "spec's own).")
@click.option("--rule", "rule_axes", multiple=True, metavar="NAME=C1[,C2...]",
              help="A rule and the choices to try (repeatable: every combination of the choices is run).")
@click.option("--depth", "depths", metavar="D1[,D2...]", help="Depth bounds (default: each spec's own).")
@click.option("--engine", type=click.Choice(ENGINES + ("all",)), help="Engine of every run (default: explicit).")
@click.option("--por/--no-por", default=True, show_default=True, help="Partial-order reduction (explicit engine).")
@click.option("--timeout", type=Seconds(), help="Seconds per run before giving up on it.")
@click.option("--max-states", type=click.IntRange(1), metavar="N", help="Give up on a run past N states.")
@click.option("--scheduler", metavar="ADDRESS",
              help="A running Dask scheduler (tcp://host:8786); default: a LocalCluster on this machine.")
@click.option("--workers", type=click.IntRange(1, 1024), metavar="N",
              help="Worker processes of the LocalCluster (default: this machine's cores).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--junit", "junit_file", type=click.Path(), help="Also write JUnit XML here, one suite per run.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="counterexamples/sweep",
              show_default=True, help="Counterexamples go to OUT/COMBINATION/SPEC.{txt,json}.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def sweep(paths, matrix_file, presets, rule_axes, depths, engine, por, timeout, max_states, scheduler, workers, fmt,
          junit_file, out_dir, quiet) -> None:
    """Run specs x presets x rule choices x depth bounds on Dask.

    Every combination of the given presets, rule choices and depths is run
    on every spec (files or folders); one table, JSON document or JUnit
    file for the lot.  Only a spec's own run (its own preset, rules and
    depth; marked *) is held to its `expect`.  Exit status: 0 all done and
    as expected; 1 a spec's own run not as expected; 2 a usage, matrix or
    spec error; 3 a run without a verdict or not run (Ctrl-C); 4 an output
    error.

    \b
    The selftests on the kernels before and after the 6.19 rewrite:
      rseqcheck sweep specs/selftests --preset linux-6.18,linux-6.19
    A rule's choices over two bounds, on a running scheduler:
      rseqcheck sweep specs/seed000 --rule next_syscall.on_signal=keep,clear \\
        --depth 10,20 --scheduler tcp://10.0.0.5:8786"""
    from rseqcheck.checker.cli.app import Usage, _terminate_as_interrupt, _unwritable

    try:
        keys = load_matrix(matrix_file) if matrix_file else {}
        if paths:
            found, problem = collect_specs(paths)
            if problem:
                raise Usage(problem)
            keys["specs"] = found
        if presets:
            keys["presets"] = parse_presets(presets)
        if rule_axes:
            axes: dict[str, list[str]] = {}
            for pair in rule_axes:
                name, choices = parse_rule_axis(pair)
                if name in axes:
                    raise Usage(f"--rule {pair!r}: {name} is given twice")
                axes[name] = choices
            keys["rules"] = axes
        if depths:
            keys["depths"] = parse_depths(depths)
    except SpecError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    except ProposalError as e:
        raise Usage(str(e)) from None
    if not keys.get("specs"):
        raise Usage("no specs: give files or folders, or `specs` in --matrix")
    if engine:
        keys["engine"] = engine
    matrix = Matrix(**keys)
    problem = _unwritable(Path(out_dir), folder=True) or (
        _unwritable(Path(junit_file), folder=False) if junit_file else None)
    if problem:
        fail(problem)
    combos = matrix.combinations()
    places, clashes = layout(matrix.specs, matrix.specs)  # OUT/COMBINATION/, then the specs' folders
    for folder in sorted({str(Path(out_dir, c.folder(), p.folder)) for c in combos for p in places.values()}):
        remove_stale_tmp(Path(folder))
    if fmt == "text":
        for f, other, place in clashes:
            for line in wrap(clash_warning(f, other, place, Path(out_dir, "COMBINATION")), "", "  "):
                click.echo(line, err=True)
    runs = [Run(s, k) for s in matrix.specs for k in range(len(combos))]
    jobs = jobs_for(matrix, runs, combos, Limits(timeout, max_states), por)
    own_spec = {}
    for s in matrix.specs:
        try:
            own_spec[s] = load_spec(s)
        except SpecError:
            own_spec[s] = None
    nworkers = workers or default_jobs()
    where = scheduler or f"a LocalCluster of {nworkers} worker{'s' if nworkers != 1 else ''}"
    if fmt == "text":
        for line in wrap(f"sweep: {_n(len(matrix.specs), 'spec')} x {_n(len(combos), 'combination')} = {_n(len(runs), 'run')} "
                         f"on {where}", ""):
            click.echo(line)
    got: dict[int, Outcome] = {}
    io_errors: list[str] = []
    interrupted = False
    ticker = Ticker("sweep", len(runs), "runs") if not quiet else None
    with _terminate_as_interrupt():
        try:
            for i, o in stream(jobs, scheduler, nworkers):
                got[i] = o
                c = combos[runs[i].combo]
                if o.graph is not None:
                    try:
                        place = places[runs[i].spec]
                        save_counterexample(o, place.path(Path(out_dir, c.folder())), place.stem)
                    except OSError as e:
                        if not io_errors:
                            io_errors.append(f"{e.filename or out_dir}: cannot write the counterexample: "
                                             f"{e.strerror or e}")
                if ticker:
                    ticker(len(got), runs[i].spec)
        except KeyboardInterrupt:
            interrupted = True
        except OSError as e:  # the scheduler cannot be reached (TimeoutError is an OSError)
            if ticker:
                ticker.done()
            for line in wrap(error_line(f"cannot reach the Dask scheduler at {scheduler}: {e}"), ""):
                click.echo(line, err=True)
            sys.exit(2)
    if ticker:
        ticker.done()
    done = [Done(runs[i], combos[runs[i].combo], got[i], is_own(own_spec[runs[i].spec], combos[runs[i].combo]))
            for i in sorted(got)]
    not_run = [(runs[i], combos[runs[i].combo]) for i in range(len(runs)) if i not in got]
    code = exit_code(done, not not_run and not interrupted)
    if junit_file:
        try:
            write_atomic(Path(junit_file), junit(done, combos, not_run))
        except OSError as e:
            io_errors.append(f"{junit_file}: cannot write the JUnit file: {e.strerror or e}")
    if io_errors and code != 2:
        code = EXIT_OUTPUT
    if fmt == "json":
        doc = {"tool": "rseqcheck", "version": __version__, "exit_status": code, "interrupted": interrupted,
               "scheduler": scheduler, "workers": None if scheduler else nworkers, "matrix": matrix.record(),
               "combinations": [{"id": f"c{k + 1}", **c.record()} for k, c in enumerate(combos)],
               "summary": {"runs": len(runs), "done": len(done), "not_run": len(not_run),
                           **{v: sum(1 for d in done if d.outcome.verdict == v)
                              for v in ("holds", "violation", "unknown", "error")},
                           "not_as_expected": sum(1 for d in done if d.differs)},
               "results": [d.record(combos.index(d.combo)) for d in done],
               "not_run": [{"spec": r.spec, "combination": f"c{combos.index(c) + 1}"} for r, c in not_run],
               "output_errors": io_errors}
        click.echo(json.dumps(doc, indent=1))
    else:
        click.echo(table(done, combos, not_run))
        click.echo("")
        for line in wrap(summary(done, len(runs)), ""):
            click.echo(line)
    for d in done:
        if d.outcome.error:
            click.echo(d.outcome.error, err=True)
    if interrupted:
        click.echo(f"interrupted: {len(not_run)} of {len(runs)} runs not run", err=True)
    for msg in io_errors:
        report(msg)
    sys.exit(code)


COMMANDS = (sweep,)
