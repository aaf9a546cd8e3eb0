"""`rseqcheck kernels fetch|list` and `rseqcheck run ... --kernels A,B`:
the conformance runs on several kernels, one QEMU boot per kernel.

Exit status of `run` over several specs and kernels: the worst of them
(0 all allowed, 1 a forbidden outcome, 2 a spec, tool or boot problem,
3 a hung guest or runs that never ended).  `kernels fetch` exits with the
missing tool's own status (checker/conformance/kernels.py TOOLS).
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import click
from rseqcheck.checker.cli.conformance import _echo, _fail, _guarded, _report
from rseqcheck.checker.conformance.backports import AutoPreset, auto_preset
from rseqcheck.checker.conformance.kernels import SERIES, KernelError, MissingTool, fetch, find, installed
from rseqcheck.checker.conformance.qemu import BootFailed, GuestHung, Job, boot, guest_name_problem
from rseqcheck.checker.conformance.run import Refused, RunResult, TooLong, run_spec, tally
from rseqcheck.checker.outcomes import OutcomeSet, model_outcomes
from rseqcheck.checker.outputs.errors import fail as output_error
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import ModelError
from rseqcheck.model.spec import Spec


@click.group()
def kernels() -> None:
    """Kernels to boot under QEMU for `rseqcheck run --kernel`."""


@kernels.command("fetch")
@click.argument("names", nargs=-1, required=True)
@_guarded
def kernels_fetch(names) -> None:
    """Download kernels NAMES (6.1, 6.12, 6.1-rt, 6.12-rt, or a
    linux-image-*-unsigned package) from the apt mirror into
    ~/.cache/rseqcheck/kernels (RSEQCHECK_CACHE moves it), with their
    uncompressed vmlinux."""
    for n in names:
        try:
            fetch(n, log=_echo)
        except MissingTool as e:
            _fail(str(e), e.status)
        except KernelError as e:
            _fail(str(e))


@kernels.command("list")
def kernels_list() -> None:
    """The fetched kernels."""
    for k in installed():
        _echo(f"{k.name:<8} {k.describe()}", "", " " * 9)
    click.echo(f"series: {', '.join(SERIES)}")


@dataclasses.dataclass
class Cell:
    kernel: str
    spec: Spec
    result: RunResult | None
    status: int
    note: str = ""


def run_matrix(specs: list[Spec], names: list[str], runs: int, rules: dict[str, str], spin: int, seed: int,
               window_us: float | None, max_states: int, preset: str, smp: int, accel: str,
               timeout: float | None, markdown: str | None) -> int:
    """Every spec on every kernel; the worst exit status."""
    cells: list[Cell] = []
    models: dict[tuple, OutcomeSet] = {}

    def model(spec: Spec, r: dict[str, str]) -> OutcomeSet:
        key = (spec.path, spec.preset, tuple(sorted(r.items())))
        if key not in models:
            models[key] = model_outcomes(spec, r, max_states=max_states)
        return models[key]

    def compare(spec: Spec, ap: AutoPreset | None) -> tuple[Spec, dict[str, str]]:
        if preset != "auto" or ap is None:
            return (spec if preset == "auto" else dataclasses.replace(spec, preset=preset)), rules
        return dataclasses.replace(spec, preset=ap.preset), {**ap.rules, **rules}

    for name in names:
        if name == "host":
            ap = auto_preset(platform.release(), platform.version())
            if ap is None and preset == "auto":
                _fail(f"host: kernel {platform.release()} is older than every preset")
            _echo(f"== kernel host: {platform.release()}; preset {_which(ap, preset)}")
            for spec in specs:
                s, r = compare(spec, ap)
                try:
                    res = run_spec(s, runs, rules=r, spin=spin, seed=seed, window_us=window_us,
                                   check_machine=False)
                except (Refused, TooLong, SpecError, ModelError) as e:
                    cells.append(_skip(name, spec, e))
                    continue
                cells.append(Cell(name, spec, res, _report(s, r, res)))
            continue
        try:
            k = find(name)
        except KernelError as e:
            _fail(str(e))
        jobs, ok_specs = [], []
        for spec in specs:
            problem = guest_name_problem(spec, {s.name for s in ok_specs})
            if problem:
                cells.append(_skip(name, spec, Refused(problem)))
                continue
            try:
                model(*compare(spec, None))  # spec errors and unsupported scenarios before the boot
                jobs.append(Job(spec, runs, spin, seed, window_us))
                ok_specs.append(spec)
            except (SpecError, ModelError) as e:
                cells.append(_skip(name, spec, e))
        limit = timeout or 120.0 + 0.5 * runs * len(jobs)
        _echo(f"== kernel {name}: booting {k.describe()} ({len(jobs)} specs x {runs} runs, "
              f"-smp {smp}, {accel}, limit {limit:g} s)")
        try:
            b = boot(k, jobs, smp=smp, accel=accel, timeout=limit)
        except MissingTool as e:
            _fail(str(e), e.status)
        except GuestHung as e:
            click.echo(f"{name}: {e}", err=True)
            cells += [Cell(name, s, None, 3, "hung" if s.name == e.running else "not run") for s in ok_specs]
            continue
        except (BootFailed, Refused) as e:
            click.echo(f"{name}: {e}", err=True)
            cells += [Cell(name, s, None, 2, "boot failed") for s in ok_specs]
            continue
        ap = auto_preset(b.release, b.version)
        _echo(f"== kernel {name}: Linux {b.release} ({b.version}), {b.ncpu} CPUs, {b.seconds:.0f} s; "
              f"preset {_which(ap, preset)}")
        if ap is None and preset == "auto":  # as --preset host: nothing to compare with
            click.echo(f"{name}: kernel {b.release} is older than every preset; not compared", err=True)
            cells += [Cell(name, s, None, 2, "no preset") for s in ok_specs]
            continue
        for spec, job in zip(ok_specs, jobs):
            status, out = b.outputs.get(spec.name, (-1, ""))
            if status != 0:
                click.echo(f"{spec.path}: the program failed in the guest (status {status}): "
                           f"{out.strip()[:300]}", err=True)
                cells.append(Cell(name, spec, None, 2, f"failed ({status})"))
                continue
            s, r = compare(spec, ap)
            assert job.program is not None
            res = tally(s, out, job.program, model(s, r), runs, seed, b.release)
            cells.append(Cell(name, spec, res, _report(s, r, res)))
    _summary(cells, names)
    if markdown:
        try:
            Path(markdown).write_text(markdown_table(cells, names))
        except OSError as e:
            output_error(f"{markdown}: cannot write: {e.strerror or e}")
        click.echo(f"wrote {markdown}")
    return max((c.status for c in cells), default=0)


def _which(ap: AutoPreset | None, preset: str) -> str:
    if preset != "auto":
        return f"{preset} (--preset; auto would be {ap.describe() if ap else 'none'})"
    return ap.describe() if ap else "none (older than every preset)"


def _skip(kernel: str, spec: Spec, e: Exception) -> Cell:
    click.echo(f"{spec.path}: {kernel}: not run: {e}", err=True)
    return Cell(kernel, spec, None, 2, "not run")


def _verdict(c: Cell) -> str:
    if c.result is None:
        return c.note
    return {0: "ok", 1: "FORBIDDEN", 2: "failed", 3: "hung runs"}[c.status]


def _summary(cells: list[Cell], names: list[str]) -> None:
    click.echo("== summary (spec: verdict per kernel)")
    specs = list(dict.fromkeys(c.spec.name for c in cells))
    by = {(c.spec.name, c.kernel): c for c in cells}
    for s in specs:
        _echo(f"{s}: " + ", ".join(f"{k} {_verdict(by[s, k])}" for k in names if (s, k) in by), "  ", "    ")


def markdown_table(cells: list[Cell], names: list[str]) -> str:
    """One row per spec, one column per kernel: each observed outcome with
    its count, `!` before one the model forbids."""
    by = {(c.spec.name, c.kernel): c for c in cells}
    specs = list(dict.fromkeys(c.spec.name for c in cells))
    release = {c.kernel: c.result.kernel for c in cells if c.result is not None}
    head = [release.get(k, k) for k in names]  # the booted kernel's uname -r
    lines = ["| spec | " + " | ".join(head) + " |", "|---|" + "---|" * len(names)]
    for s in specs:
        row = []
        for k in names:
            c = by.get((s, k))
            if c is None or c.result is None:
                row.append(c.note if c else "")
                continue
            r = c.result
            parts = [f"{'!' if o in r.forbidden else ''}{n:,} `{o}`" for o, n in r.observed.most_common()]
            if r.excluded:
                parts.append(f"({sum(r.excluded.values()):,} set aside)")
            row.append(", ".join(parts) or "-")
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["kernels", "markdown_table", "run_matrix"]
