"""Run a spec's scenario on the real kernel (klitmus7-style) and compare the
observed outcomes with the ones the model allows.

checker/conformance/cgen.py writes the C program; this module checks the machine, builds
the program with gcc, runs it, parses one line per run and compares.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rseqcheck.checker.conformance.cgen import Program, Unsupported, generate
from rseqcheck.checker.conformance.host import HostRefused, host_preset
from rseqcheck.checker.outcomes import Outcome, OutcomeSet, model_outcomes
from rseqcheck.model.spec import Spec


class Refused(Exception):
    """The run cannot be done faithfully here (exit status 2)."""


class TooLong(Exception):
    """The program ran out of time (exit status 3)."""


def machine_preset() -> str:
    """The preset of the running kernel (checker/conformance/host.py), or Refused with
    what uname says."""
    try:
        return host_preset().preset
    except HostRefused as e:
        raise Refused(str(e)) from None


@dataclass
class RunResult:
    runs: int
    observed: Counter[Outcome]
    preempted: Counter[Outcome]  # runs of each outcome with an involuntary context switch
    excluded: Counter[Outcome]  # preempted runs set aside: the spec has no preemption
    hung: int
    errors: list[str]
    window_us: float
    seed: int
    model: OutcomeSet
    program: Program
    kernel: str

    @property
    def forbidden(self) -> list[Outcome]:
        return sorted(o for o in self.observed if o not in self.model.counts)

    @property
    def unobserved(self) -> list[Outcome]:
        return sorted(o for o in self.model.counts if o not in self.observed)


@dataclass
class Build:
    exe: Path
    source: Path
    program: Program
    tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)


def build(spec: Spec, spin: int = 200000, workdir: Path | None = None) -> Build:
    """Generate and compile (gcc -O1); Unsupported/Refused on failure."""
    prog = generate(spec, spin=spin)
    if shutil.which("gcc") is None:
        raise Refused("gcc not found")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rseqcheck-run-")
        workdir = Path(tmp.name)
    src = workdir / f"{spec.name}.c"
    exe = workdir / spec.name
    src.write_text(prog.source)
    r = subprocess.run(["gcc", "-O1", "-Wall", "-o", str(exe), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        raise Refused(f"gcc failed on the generated program:\n{r.stderr[:2000]}")
    return Build(exe, src, prog, tmp)


def parse_run_line(line: str, uvars: list[str]) -> tuple[Outcome | None, bool, str]:
    """(outcome, preempted, kind) of one `run ...` line; outcome None for hung/error."""
    parts = line.split()
    kind, code, nivcsw = parts[1], int(parts[2]), int(parts[3])
    # sorted by name as the model's outcomes (a per-CPU array's slots are printed in memory order)
    vals = tuple(sorted(zip(uvars, (int(x) for x in parts[4:]))))
    if kind == "exit":
        return Outcome("exit", vals), nivcsw > 0, kind
    if kind == "signal":
        try:
            name = signal.Signals(code).name
        except ValueError:
            name = f"signal {code}"
        return Outcome(f"killed by {name}", vals), nivcsw > 0, kind
    return None, nivcsw > 0, f"{kind} {code}"


def run_spec(
    spec: Spec,
    runs: int,
    rules: dict[str, str] | None = None,
    spin: int = 200000,
    seed: int = 1,
    window_us: float | None = None,
    check_machine: bool = True,
    timeout: float | None = None,
) -> RunResult:
    kernel = platform.release()
    generate(spec, spin=spin)  # what cannot be driven is refused before anything else
    if check_machine:
        preset = machine_preset()
        if spec.preset != preset:
            raise Refused(f"{spec.path}: preset {spec.preset} but this kernel ({kernel}) is {preset}; "
                          "a run compares the model with the kernel it runs on")
    b = build(spec, spin=spin)  # Unsupported before the (slower) model
    model = model_outcomes(spec, rules)
    if model.complete and not model.counts:
        if b.tmp is not None:
            b.tmp.cleanup()
        raise Refused("no run of this scenario ends in the model (it loops forever): "
                      "there is no outcome to compare")
    try:
        win = str(window_us) if window_us else "0"  # 0: the program calibrates
        limit = timeout or 120.0 + runs * 0.2  # a run takes µs to ms; a hung one is killed after 10 s
        # its own session, so that a timeout kills the runner and every child it forked
        with subprocess.Popen([str(b.exe), str(runs), str(seed), win], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **b.program.env},
                              start_new_session=True, cwd=str(b.exe.parent)) as proc:  # in its scratch folder
            try:
                out, err = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise TooLong(f"the generated program did not finish within {limit:g} s") from None
        p = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if b.tmp is not None:
            b.tmp.cleanup()
    if p.returncode != 0:
        raise Refused(f"the generated program failed (status {p.returncode}): {(p.stdout + p.stderr).strip()[:500]}")
    return tally(spec, p.stdout, b.program, model, runs, seed, kernel)


def tally(spec: Spec, stdout: str, program: Program, model: OutcomeSet, runs: int, seed: int,
          kernel: str) -> RunResult:
    """The histogram of a generated program's output (one `run ...` line per
    run), here or in a guest (checker/conformance/qemu.py)."""
    observed: Counter[Outcome] = Counter()
    preempted: Counter[Outcome] = Counter()
    excluded: Counter[Outcome] = Counter()
    hung = 0
    errors: list[str] = []
    win_us = 0.0
    for line in stdout.splitlines():
        if line.startswith("window "):
            win_us = float(line.split()[2])
        elif line.startswith("run "):
            o, pre, kind = parse_run_line(line, program.uvars)
            if o is None:
                if kind.startswith("hung"):
                    hung += 1
                else:
                    errors.append(kind)
                continue
            if pre and not spec.env.preemption:
                # an event the spec does not model (as probe p09 excludes such runs)
                excluded[o] += 1
                continue
            observed[o] += 1
            if pre:
                preempted[o] += 1
    return RunResult(runs, observed, preempted, excluded, hung, errors, win_us, seed, model, program, kernel)


__all__ = ["Refused", "RunResult", "TooLong", "Unsupported", "build", "machine_preset", "run_spec", "tally"]
