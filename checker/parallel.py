"""Many specs on several cores (`verify --jobs N`), with the results and
their order those of `--jobs 1`.

Each spec is one job: loading, checking, saving its counterexample, under
its own limits (checker/limits.py), in a worker process.  Results come back
in the order the specs were given, each as soon as every earlier one is in,
so the output reads the same whatever the number of workers.  A worker
returns the outcome without its IR (`system`), which the caller does not
need and which would cost more to send back than to build.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.limits import Limits, check_within
from checker.verify import Outcome, save_counterexample


@dataclass(frozen=True)
class Job:
    """What a worker needs to check one spec: all picklable."""

    path: str
    stem: str  # the name its counterexamples are saved under
    out_dir: str
    limits: Limits
    engine: str  # explicit | bmc | induction | all
    depth: int | None
    por: bool
    kw: dict[str, Any] = field(default_factory=dict)  # max_states, proposal, por_frozen, ...


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_job(job: Job, progress: Callable | None = None) -> tuple[Outcome, str | None]:
    """Check one spec and save its counterexample: (outcome, output error)."""
    from checker.cross import check_all, check_one

    def run(prog):
        if job.engine == "all":
            return check_all(job.path, depth=job.depth, por=job.por, timeout=job.limits.timeout, progress=prog,
                             **job.kw)
        return check_one(job.path, engine=job.engine, depth=job.depth, por=job.por, timeout=job.limits.timeout,
                         progress=prog, **job.kw)

    def save(o: Outcome) -> None:
        save_counterexample(o, Path(job.out_dir), job.stem)

    return check_within(job.path, job.limits, run, save, progress, job.engine, job.depth)


def _worker(job: Job) -> tuple[Outcome, str | None]:
    o, err = run_job(job)
    o.system = None  # rebuilt where needed; not worth sending back
    return o, err


def run_jobs(jobs: list[Job], workers: int) -> Iterator[tuple[Outcome, str | None]]:
    """Each job's result, in the jobs' order.  Ctrl-C (KeyboardInterrupt)
    propagates after the pool is shut down with the pending jobs cancelled;
    the results yielded so far are the complete record."""
    if not jobs:
        return
    ctx = multiprocessing.get_context("fork")  # Linux; the workers need no re-import
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx)
    futures: list[Future] = []
    try:
        futures = [pool.submit(_worker, j) for j in jobs]
        for f in futures:  # in order: a later spec that finished first waits its turn
            yield f.result()
    finally:
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
