"""`rseqcheck sweep`: specs x presets x rule choices x depth bounds, each
combination one run of checker/verify.py:check_spec (through the same Job
and worker code as `verify --jobs`, checker/parallel.py), on a Dask
distributed cluster.

The matrix comes from the command line or a small TOML file (load_matrix;
docs/sweep.md).  A *combination* is one (preset, rule choices, depth); a
*run* is one spec under one combination, in the order spec, preset, rules,
depth, which is also the order of every output.  A combination that leaves
a spec's model as the spec has it (same preset, the same choice of every
rule, its own depth) is that spec's *own* run: only there is the verdict
compared with the spec's `expect`; elsewhere a verdict is a finding, not a
failure.

This module knows the matrix and the results; the executor (dask imported
only here, lazily) is `stream`.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rseqcheck.checker.engines.explicit import Stats
from rseqcheck.checker.inputs import collect_specs
from rseqcheck.checker.limits import Limits, unknown_result
from rseqcheck.checker.parallel import Job, run_job
from rseqcheck.checker.proposal import Proposal, ProposalError, check_preset, parse_rules
from rseqcheck.checker.verify import ENGINES, Outcome
from rseqcheck.model import files
from rseqcheck.model.errors import SpecError
from rseqcheck.model.rules import PRESETS, resolve
from rseqcheck.model.spec import Spec, load_spec, locate, toml_error

MATRIX_KEYS = ("specs", "presets", "rules", "depths", "engine")
# Exceptions raised inside a run (not a lost worker: see stream) are retried
# once by Dask before the run is reported as an error.
RETRIES = 1


@dataclass(frozen=True)
class Combination:
    """One point of the matrix besides the spec: None means each spec's own."""

    preset: str | None
    rules: tuple[tuple[str, str], ...]
    depth: int | None

    def proposal(self) -> Proposal:
        return Proposal(self.preset, dict(self.rules))

    def record(self) -> dict[str, Any]:
        return {"preset": self.preset, "rules": dict(self.rules), "depth": self.depth}

    def describe(self) -> str:
        parts = [self.preset or "own preset"] if self.preset or not (self.rules or self.depth) else []
        parts += [f"{k}={v}" for k, v in self.rules]
        if self.depth:
            parts.append(f"depth {self.depth}")
        return "; ".join(parts)

    def folder(self) -> str:
        """A folder name for its counterexamples, one per combination."""
        parts = [self.preset or "own"] + [f"{k}={v}" for k, v in self.rules]
        if self.depth:
            parts.append(f"d{self.depth}")
        return "+".join(parts)


@dataclass
class Matrix:
    specs: list[str]
    presets: list[str | None] = field(default_factory=lambda: [None])
    rules: dict[str, list[str]] = field(default_factory=dict)  # canonical name -> choices
    depths: list[int | None] = field(default_factory=lambda: [None])
    engine: str = "explicit"

    def combinations(self) -> list[Combination]:
        names = list(self.rules)
        out = []
        for preset in self.presets:
            for choice in itertools.product(*(self.rules[n] for n in names)):
                for depth in self.depths:
                    out.append(Combination(preset, tuple(zip(names, choice)), depth))
        return out

    def record(self) -> dict[str, Any]:
        return {"specs": self.specs, "presets": self.presets, "rules": self.rules, "depths": self.depths,
                "engine": self.engine}


@dataclass(frozen=True)
class Run:
    spec: str
    combo: int  # index into the matrix's combinations


# ------------------------------------------------------------ the matrix


def parse_presets(text: str, what: str = "--preset") -> list[str | None]:
    """`a,b` or `all` (every preset, oldest first)."""
    if text.strip() == "all":
        return list(PRESETS)
    names = [p.strip() for p in text.split(",")]
    return _unique([check_preset(p, what) for p in names], what)


def parse_rule_axis(pair: str, what: str = "--rule") -> tuple[str, list[str]]:
    """`NAME=C1,C2` as (canonical name, [C1, C2]); each choice is checked
    as `verify --rule NAME=C` checks it."""
    name, sep, choices = pair.partition("=")
    if not sep or not choices.strip():
        raise ProposalError(f"{what} {pair!r}: expected NAME=CHOICE[,CHOICE...]")
    got = [parse_rules((f"{name}={c}",)) for c in choices.split(",")]
    canon = next(iter(got[0]))
    return canon, _unique([g[canon] for g in got], f"{what} {pair!r}")


def parse_depths(text: str, what: str = "--depth") -> list[int | None]:
    out = []
    for d in text.split(","):
        try:
            n = int(d.strip())
        except ValueError:
            raise ProposalError(f"{what} {text!r}: expected depths such as 10,20") from None
        if not 1 <= n <= 100000:
            raise ProposalError(f"{what} {n}: out of range 1..100000")
        out.append(n)
    return _unique(out, what)


def _unique(items: list, what: str) -> list:
    if len(set(items)) != len(items):
        raise ProposalError(f"{what}: a value is given twice")
    return items


def load_matrix(path: str) -> dict[str, Any]:
    """A matrix file's keys, checked, as the command-line options would give
    them ({"specs": [...files...], "presets": [...], ...}); its spec paths
    are relative to its folder.  SpecError (`file:line: message`) for
    anything wrong."""
    try:
        raw = files.read_regular(Path(path), files.MAX_SPEC_BYTES)
        text = raw.decode("utf-8")
    except files.InputError as e:
        raise SpecError(path, None, e.strerror) from None
    except UnicodeDecodeError as e:
        raise SpecError(path, raw[: e.start].count(b"\n") + 1, "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise toml_error(path, text, e) from None
    lines, _ = locate(text)
    base = os.path.dirname(path)

    def err(key: tuple[str, ...], msg: str) -> SpecError:
        return SpecError(path, lines.get(key) or lines.get(key[:1]) or 1, msg)

    def strings(key: tuple[str, ...], v: Any) -> list[str]:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise err(key, f"{'.'.join(key)}: expected a string or a non-empty list of strings")
        return v

    out: dict[str, Any] = {}
    for key, v in data.items():
        if key not in MATRIX_KEYS:
            raise err((key,), f"unknown key {key!r} (known: {', '.join(MATRIX_KEYS)})")
        try:
            if key == "specs":
                paths = [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
                         for p in strings((key,), v)]
                found, problem = collect_specs(tuple(paths))
                if problem:
                    raise err((key,), f"specs: {problem}")
                out[key] = found
            elif key == "presets":
                out[key] = parse_presets(",".join(strings((key,), v)), "presets")
            elif key == "engine":
                if v not in ENGINES + ("all",):
                    raise err((key,), f"engine: expected one of {', '.join(ENGINES + ('all',))}")
                out[key] = v
            elif key == "depths":
                if not isinstance(v, list) or not v or not all(type(x) is int for x in v):
                    raise err((key,), "depths: expected a non-empty list of integers")
                out[key] = parse_depths(",".join(map(str, v)), "depths")
            else:  # rules
                if not isinstance(v, dict) or not v:
                    raise err((key,), "rules: expected a table of NAME = [CHOICE, ...]")
                axes: dict[str, list[str]] = {}
                for name, choices in v.items():
                    line_key = (key, name)
                    try:
                        canon, cs = parse_rule_axis(f"{name}={','.join(strings(line_key, choices))}", "rules:")
                    except ProposalError as e:
                        raise err(line_key, str(e)) from None
                    if canon in axes:
                        raise err(line_key, f"rules: {canon} is given twice")
                    axes[canon] = cs
                out[key] = axes
        except ProposalError as e:
            raise err((key,), str(e)) from None
    return out


# ------------------------------------------------------------ the runs


def jobs_for(matrix: Matrix, runs: list[Run], combos: list[Combination], limits: Limits,
             por: bool) -> list[Job]:
    """One checker/parallel.py Job per run; counterexamples are saved by
    the caller (the workers may be on other machines), so out_dir is
    unused there."""
    out = []
    for r in runs:
        c = combos[r.combo]
        kw: dict[str, Any] = {"proposal": c.proposal()} if c.preset or c.rules else {}
        if limits.max_states:
            kw["max_states"] = limits.max_states
        out.append(Job(r.spec, Path(r.spec).stem, "", limits, matrix.engine, c.depth, por, kw))
    return out


def work(job: Job) -> Outcome:
    """One run, in a Dask worker: the outcome without its IR (rebuilt where
    needed, not worth sending back) and with its counterexample graph,
    which the client saves."""
    o, _ = run_job(job, saving=False)
    o.system = None
    return o


def lost(job: Job, reason: str) -> Outcome:
    """The outcome of a run that never came back (its workers died)."""
    o = Outcome(job.path, proposal=job.kw.get("proposal"))
    try:
        spec = load_spec(job.path)
    except SpecError as e:
        o.error = str(e)
        return o
    o.spec = o.proposal.apply(spec) if o.proposal else spec
    o.result = unknown_result(job.engine, job.depth or spec.depth, reason, Stats(), time.monotonic())
    return o


def is_own(spec: Spec | None, combo: Combination) -> bool:
    """The combination leaves the spec's model as the spec has it."""
    if spec is None:
        return False
    mine = combo.proposal().apply(spec)
    return (resolve(mine.preset, mine.rules) == resolve(spec.preset, spec.rules)
            and combo.depth in (None, spec.depth))


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process as it starts
    (`dask worker --preload checker.sweep`): Ctrl-C on the terminal reaches
    the whole process group, and is the client's to handle (it cancels
    what has not finished and closes the cluster); a worker that took it
    would die with a traceback instead."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stream(jobs: list[Job], scheduler: str | None, workers: int) -> Iterator[tuple[int, Outcome]]:
    """(index, outcome) of every job as it finishes, on the Dask scheduler
    at `scheduler`, or on a LocalCluster of `workers` processes of one
    thread each.  A worker lost mid-run: the scheduler gives its job to
    another worker (up to distributed.scheduler.allowed-failures times;
    then the run is "unknown: worker lost").  Closing the generator (or
    Ctrl-C in the caller) cancels what has not finished."""
    import logging

    from distributed import Client, LocalCluster, as_completed
    from distributed.scheduler import KilledWorker

    if not jobs:
        return
    cluster = client = None
    futures: list = []
    try:
        with _held_signals() if scheduler is None else nullcontext():  # a cluster half started would stay
            if scheduler is None:
                # dashboard ":0", a free port: its HTTP server starts even with None, and 8787 may be another's
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR, preload=["rseqcheck.checker.sweep"])
                client = Client(cluster)
            else:
                client = Client(scheduler)  # waits distributed.comm.timeouts.connect (30 s) for it
            tag = uuid.uuid4().hex[:8]
            futures = [client.submit(work, j, key=f"rseqcheck-{tag}-{i}", retries=RETRIES, pure=False)
                       for i, j in enumerate(jobs)]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                o = fut.result()
            except KilledWorker:
                o = lost(jobs[i], "worker lost while running it, several times")
            except Exception as e:  # a bug in a run, after its retries: that run's error only
                o = Outcome(jobs[i].path, proposal=jobs[i].kw.get("proposal"),
                            error=f"{jobs[i].path}: internal error in a worker: {type(e).__name__}: {e}")
            yield i, o
    finally:
        unfinished = [f for f in futures if not f.done()]
        if unfinished:  # the complaints about cancelled runs and lost workers, with tracebacks
            _quiet_dask()
        for f in unfinished:
            f.cancel()
        if client is not None:
            client.close()
        if cluster is not None:
            if unfinished:  # a worker busy with a run would hold up close() until the run ends
                for nanny in cluster.workers.values():
                    if getattr(nanny, "pid", None):
                        os.kill(nanny.pid, signal.SIGKILL)
            cluster.close()


def _quiet_dask() -> None:
    """Silence what Dask and its event loop log while a cluster whose
    workers were killed shuts down (tracebacks of callbacks that lost
    their connection: tornado's and asyncio's loggers, not only Dask's)."""
    import logging

    for name in ["distributed", "tornado", "asyncio", *logging.root.manager.loggerDict]:
        if name.startswith(("distributed", "tornado", "asyncio")):
            logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _held_signals() -> Iterator[None]:
    """Ctrl-C is blocked in this process while a LocalCluster starts and
    the runs are submitted (2-3 s), so that the start is not cut halfway
    (a cluster half started, "Nanny failed to start"); one that came
    meanwhile is delivered when it is unblocked, as KeyboardInterrupt, and
    the caller closes what was started.  Worker processes still starting
    get it too (the terminal sends it to the whole process group): they
    die with a traceback, which changes nothing to the record."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
