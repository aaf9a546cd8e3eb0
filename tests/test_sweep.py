"""`rseqcheck sweep` on Dask: verdict tables, JSON, JUnit, matrix files,
a worker killed mid-sweep, Ctrl-C.

One LocalCluster (2 processes) serves the module; the commands reach it
with --scheduler.  The expected verdicts are those of
`rseqcheck verify --preset P` on the same specs (test_matches_verify
checks the lot against checker/verify.py:check_spec)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.limits import Limits
from rseqcheck.checker.proposal import Proposal
from rseqcheck.checker.sweep import Matrix, Run, jobs_for, stream
from rseqcheck.checker.verify import check_spec

from tests.test_ci import counts_add_up, schema_problems

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["specs/seed000/rseq_clear_linux619.toml", "specs/seed000/vyukov_clear_linux418.toml",
         "specs/selftests/sud_bad_selector.toml"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR, preload=["rseqcheck.checker.sweep"])
    client = Client(c)
    yield c.scheduler_address, client
    client.close()
    c.close()


@pytest.fixture(autouse=True)
def _here(monkeypatch):
    monkeypatch.chdir(ROOT)


def sweep(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["sweep", *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def no_times(text: str) -> str:
    return re.sub(r"\d+\.\d\d s", "T s", text)


def test_table_two_presets(cluster, tmp_path):
    addr, _ = cluster
    code, out, err = sweep(*SMALL, "--preset", "linux-4.18,linux-6.19", "--scheduler", addr, "--out",
                           str(tmp_path), "-q")
    assert code == 0, err
    assert out.splitlines()[0] == f"sweep: 3 specs x 2 combinations = 6 runs on {addr}"
    assert no_times("\n".join(out.splitlines()[1:])) == """\
combinations (* a spec's own model, checked against its expect):
  c1  linux-4.18
  c2  linux-6.19

specs/seed000/rseq_clear_linux619.toml
  c1   holds                                             127  T s
  c2*  violation of next-syscall-delivered (22 steps)    101  T s

specs/seed000/vyukov_clear_linux418.toml
  c1*  holds                                           1,563  T s
  c2   violation of next-syscall-delivered (22 steps)    548  T s

specs/selftests/sud_bad_selector.toml
  c1   holds                                              13  T s
  c2   violation of no-unexpected-kill (7 steps)           8  T s

6 of 6 runs done: 3 holds, 3 violation, 0 unknown, 0 error"""
    assert all(len(line) <= 72 for line in out.splitlines())
    # counterexamples: one folder per combination, the specs' folders below it (checker/outputs/layout.py), replayable
    saved = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json"))
    assert saved == ["linux-6.19/seed000/rseq_clear_linux619.json", "linux-6.19/seed000/vyukov_clear_linux418.json",
                     "linux-6.19/selftests/sud_bad_selector.json"]
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "linux-6.19")])
    assert r.exit_code == 0, r.stdout


def test_rules_and_depths(cluster, tmp_path):
    addr, _ = cluster
    code, out, _ = sweep("specs/seed000/vyukov_keep_linux418.toml", "--rule", "next_syscall.on_signal=keep,clear",
                         "--depth", "10,30", "--scheduler", addr, "--out", str(tmp_path), "-q")
    assert code == 0
    assert no_times("\n".join(out.splitlines()[1:])) == """\
combinations (* a spec's own model, checked against its expect):
  c1  next_syscall.on_signal=keep; depth 10
  c2  next_syscall.on_signal=keep; depth 30
  c3  next_syscall.on_signal=clear; depth 10
  c4  next_syscall.on_signal=clear; depth 30

specs/seed000/vyukov_keep_linux418.toml
  c1  violation of next-syscall-atomic (10 steps)    270  T s
  c2  violation of next-syscall-atomic (10 steps)    270  T s
  c3  holds to depth 10                              290  T s
  c4  holds to depth 30                            1,381  T s

4 of 4 runs done: 2 holds, 2 violation, 0 unknown, 0 error"""


def test_own_run_not_as_expected(cluster, tmp_path):
    """Only a spec's own run is held to its expect: exit 1 and `<-`."""
    addr, _ = cluster
    text = (ROOT / "specs/selftests/sud_bad_selector.toml").read_text()
    spec = tmp_path / "wrong.toml"
    spec.write_text(text.replace('expect = "violation"', 'expect = "holds"'))
    code, out, _ = sweep(str(spec), "--preset", "linux-6.18,linux-4.18", "--scheduler", addr, "--out",
                         str(tmp_path / "cx"), "-q")
    assert code == 1
    # the verdict and its mark are too wide for the row: the numbers go below
    assert no_times("\n".join(out.splitlines()[-6:])) == """\
  c1*  violation of no-unexpected-kill (7 steps)  <- expected holds
                                                               8  T s
  c2   holds                                                  13  T s

2 of 2 runs done: 1 holds, 1 violation, 0 unknown, 0 error; 1 own run
  not as expected"""


def test_cannot_be_built_elsewhere(cluster, tmp_path):
    """A spec using a field an older kernel lacks: that run is "cannot be
    built", skipped in JUnit, and the exit status stays 0."""
    addr, _ = cluster
    spec = "specs/mm_cid/mm_cid_counter_linux618.toml"
    code, out, err = sweep(spec, "--preset", "linux-4.18,linux-6.18", "--scheduler", addr, "--out",
                           str(tmp_path), "--junit", str(tmp_path / "j.xml"), "-q")
    assert code == 0
    assert out.splitlines()[0] == f"sweep: 1 spec x 2 combinations = 2 runs on {addr}"
    assert no_times("\n".join(out.splitlines()[5:])) == f"""\
{spec}
  c1   cannot be built
  c2*  holds            114,041  T s

2 of 2 runs done: 1 holds, 0 violation, 0 unknown, 1 error"""
    assert err.startswith(f"{spec}:34: rseq.mm_cid: struct rseq has no mm_cid before 6.3")
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert (root.get("errors"), root.get("failures")) == ("0", "0")
    assert [su.get("skipped") for su in root.findall("testsuite")] == ["1", "0"]
    assert schema_problems((tmp_path / "j.xml").read_text()) == []
    counts_add_up((tmp_path / "j.xml").read_text())
    skipped = root.find("testsuite/testcase/skipped")
    assert skipped.get("message").startswith(f"cannot be built: {spec}:34: ")


def test_limit_is_unknown(cluster, tmp_path):
    """--max-states per run: a run cut by it has no verdict, exit 3."""
    addr, _ = cluster
    code, out, _ = sweep("specs/librseq/percpu_cmpxchg.toml", "--preset", "linux-6.18", "--max-states", "1000",
                         "--scheduler", addr, "--out", str(tmp_path), "--format", "json", "-q")
    doc = json.loads(out)
    (r,) = doc["results"]
    assert (code, doc["exit_status"], r["verdict"], r["reason"], r["states"]) == (
        3, 3, "unknown", "state limit 1000 reached", 1000)


def test_matches_verify(cluster, tmp_path):
    """Every run's verdict, property, steps and states are check_spec's
    under the same proposal."""
    addr, _ = cluster
    code, out, _ = sweep(*SMALL, "--preset", "linux-4.18,linux-6.19", "--scheduler", addr, "--out", str(tmp_path),
                         "--format", "json", "-q")
    doc = json.loads(out)
    assert code == doc["exit_status"] == 0
    assert [(r["spec"], r["combination"]["id"]) for r in doc["results"]] == [
        (s, c) for s in SMALL for c in ("c1", "c2")]
    for r in doc["results"]:
        o = check_spec(r["spec"], proposal=Proposal(r["combination"]["preset"]))
        assert (r["verdict"], r["property"], r["trace_steps"], r["states"]) == (
            o.verdict, o.result.prop, len(o.result.trace) - 1 if o.result.trace else None, o.result.stats.states)


def test_json_shape(cluster, tmp_path):
    addr, _ = cluster
    code, out, _ = sweep(SMALL[0], "--preset", "linux-6.19", "--rule", "next_syscall.on_signal=keep", "--scheduler", addr,
                         "--out", str(tmp_path), "--format", "json")
    doc = json.loads(out)
    assert set(doc) == {"tool", "version", "exit_status", "interrupted", "scheduler", "workers", "matrix",
                        "combinations", "summary", "results", "not_run", "output_errors"}
    assert doc["matrix"] == {"specs": [SMALL[0]], "presets": ["linux-6.19"], "rules": {"next_syscall.on_signal": ["keep"]},
                             "depths": [None], "engine": "explicit"}
    assert doc["combinations"] == [{"id": "c1", "preset": "linux-6.19", "rules": {"next_syscall.on_signal": "keep"},
                                    "depth": None}]
    assert doc["summary"] == {"runs": 1, "done": 1, "not_run": 0, "holds": 0, "violation": 1, "unknown": 0,
                              "error": 0, "not_as_expected": 0}
    (r,) = doc["results"]
    assert r["run"] == f"{SMALL[0]} [c1: linux-6.19; next_syscall.on_signal=keep]"
    assert r["own"] is False and r["differs"] is False
    assert r["proposal"] == {"preset": "linux-6.19", "rules": {"next_syscall.on_signal": "keep"}}
    assert (r["verdict"], r["property"], r["trace_steps"], r["states"]) == ("violation", "next-syscall-atomic", 10, 54)
    folder = tmp_path / "linux-6.19+next_syscall.on_signal=keep"
    assert r["counterexample_files"] == [str(folder / f"rseq_clear_linux619.{x}") for x in ("txt", "json")]
    assert (doc["scheduler"], doc["workers"], doc["interrupted"], doc["not_run"]) == (addr, None, False, [])


def test_junit(cluster, tmp_path):
    addr, _ = cluster
    code, _, _ = sweep(*SMALL, "--preset", "linux-4.18,linux-6.19", "--scheduler", addr, "--out",
                       str(tmp_path / "cx"), "--junit", str(tmp_path / "j.xml"), "-q")
    assert code == 0
    root = ET.parse(tmp_path / "j.xml").getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"{s} [c{k}: {p}]" for s in SMALL
                                               for k, p in ((1, "linux-4.18"), (2, "linux-6.19"))]
    own = [s.find("properties/property[@name='own_model']").get("value") for s in suites]
    assert own == ["false", "true", "true", "false", "false", "false"]
    # rseq_clear_linux619 expects a violation: on 4.18 it holds, a finding, not a failure
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    verdicts = [s.find("properties/property[@name='verdict']").get("value") for s in suites]
    assert verdicts == ["holds", "violation", "holds", "violation", "holds", "violation"]
    assert schema_problems((tmp_path / "j.xml").read_text()) == []
    counts_add_up((tmp_path / "j.xml").read_text())


@pytest.mark.parametrize("text, line, message", [
    ('specs = ["specs/selftests"]\nkernels = ["x"]\n', 2,
     "unknown key 'kernels' (known: specs, presets, rules, depths, engine)"),
    ('specs = ["specs/selftests"]\npresets = ["linux-9.9"]\n', 2, "presets 'linux-9.9': unknown preset (known: "),
    ('specs = ["specs/selftests"]\n\n[rules]\n"rseq.impl" = ["legacy", "nope"]\n', 4,
     "--rule 'rseq.impl=nope': choices of rseq.impl: "),
    ('specs = ["specs/selftests"]\n[rules]\n"no.such" = ["a"]\n', 3, "--rule 'no.such=a': expected NAME=CHOICE"),
    ('specs = ["specs/selftests"]\ndepths = [10, "20"]\n', 2, "depths: expected a non-empty list of integers"),
    ('specs = ["specs/selftests"]\ndepths = [10, 10]\n', 2, "depths: a value is given twice"),
    ('specs = ["specs/no-such-folder"]\n', 1, "specs: "),
    ('specs = ["specs/selftests"]\nengine = "fast"\n', 2, "engine: expected one of explicit, bmc, induction, all"),
    ('presets = "all"\nspecs = ["specs/selftests"\n', 2, "TOML error: "),
])
def test_bad_matrix(tmp_path, text, line, message):
    m = tmp_path / "m.toml"
    m.write_text(text.replace("specs/", str(ROOT / "specs") + "/"))
    code, out, err = sweep("--matrix", str(m), "--out", str(tmp_path / "cx"))
    assert (code, out) == (2, "")
    (got,) = err.strip().splitlines()
    assert got.startswith(f"{m}:{line}: {message}"), got


def test_matrix_file(cluster, tmp_path):
    """Paths in a matrix are relative to its folder; the command line's
    options replace its keys."""
    addr, _ = cluster
    m = tmp_path / "ci" / "matrix.toml"
    m.parent.mkdir()
    rel = os.path.relpath(ROOT / "specs/seed000", m.parent)
    m.write_text(f'specs = ["{rel}/vyukov_keep_linux418.toml"]\npresets = ["linux-4.18", "linux-6.19"]\n'
                 'depths = [10]\n[rules]\n"next_syscall.on_signal" = ["keep", "clear"]\n')
    code, out, _ = sweep("--matrix", str(m), "--scheduler", addr, "--out", str(tmp_path / "cx"), "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert [c["id"] for c in doc["combinations"]] == ["c1", "c2", "c3", "c4"]
    assert [(c["preset"], c["rules"]["next_syscall.on_signal"], c["depth"]) for c in doc["combinations"]] == [
        ("linux-4.18", "keep", 10), ("linux-4.18", "clear", 10), ("linux-6.19", "keep", 10),
        ("linux-6.19", "clear", 10)]
    assert [r["verdict"] for r in doc["results"]] == ["violation", "holds", "violation", "holds"]
    code, out, _ = sweep("--matrix", str(m), "--preset", "linux-6.19", "--scheduler", addr, "--out",
                         str(tmp_path / "cx"), "--format", "json")
    assert [c["preset"] for c in json.loads(out)["combinations"]] == ["linux-6.19", "linux-6.19"]


def test_bad_options(tmp_path):
    code, _, err = sweep("specs/selftests", "--preset", "linux-6.18,linux-6.18")
    assert code == 2 and "a value is given twice" in err
    code, _, err = sweep("specs/selftests", "--rule", "rseq.impl")
    assert code == 2 and "expected NAME=CHOICE[,CHOICE...]" in err
    code, _, err = sweep("specs/selftests", "--depth", "ten")
    assert code == 2 and "expected depths such as 10,20" in err
    code, _, err = sweep()
    assert code == 2 and "no specs" in err


def test_unreachable_scheduler(tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, _, err = sweep("specs/selftests", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path), "-q")
    assert code == 2
    assert err.startswith("rseqcheck: error: cannot reach the Dask scheduler at tcp://127.0.0.1:1:")
    assert "Traceback" not in err and all(len(line) <= 72 for line in err.splitlines())


def kill_a_busy_worker(client, stop: threading.Event, killed: list[int]) -> None:
    """Wait until a worker has a run in hand, then SIGKILL its process."""
    while not stop.is_set():
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def run_with_a_kill(cluster, matrix: Matrix) -> tuple[list, list[int], list[Run], list]:
    addr, client = cluster
    client.wait_for_workers(2)
    combos = matrix.combinations()
    runs = [Run(s, k) for s in matrix.specs for k in range(len(combos))]
    jobs = jobs_for(matrix, runs, combos, Limits(), True)
    stop, killed = threading.Event(), []
    t = threading.Thread(target=kill_a_busy_worker, args=(client, stop, killed))
    t.start()
    try:
        got = list(stream(jobs, addr, 2))
    finally:
        stop.set()
        t.join()
    return sorted(got, key=lambda x: x[0]), killed, runs, combos


def test_killed_worker(cluster):
    """A worker SIGKILLed mid-sweep costs only its run, which the scheduler
    gives to another worker: every result still comes back, each the
    verdict of check_spec."""
    specs = ["specs/librseq/percpu_cmpxchg.toml", "specs/librseq/percpu_list_push.toml"]
    matrix = Matrix(specs, presets=["linux-6.18", "linux-6.19"])
    got, killed, runs, combos = run_with_a_kill(cluster, matrix)
    assert len(killed) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert [i for i, _ in got] == [0, 1, 2, 3]
    # `rseqcheck verify --preset linux-6.18` (then 6.19) on each spec
    assert [(o.verdict, o.result.stats.states) for _, o in got] == [
        ("holds", 190533), ("holds", 100801), ("holds", 188968), ("holds", 102068)]


def test_ctrl_c_leaves_a_complete_record(tmp_path):
    """SIGINT to the process group (Ctrl-C on a terminal), on a sweep on its
    own LocalCluster: exit 3, the finished runs in the JSON and JUnit, the
    others listed as not run; no worker traceback."""
    junit = tmp_path / "j.xml"
    first = "specs/selftests/sud_bad_selector.toml"  # a violation on both: its trace says the sweep is under way
    p = subprocess.Popen([str(Path(sys.executable).parent / "rseqcheck"), "sweep", first, "specs/librseq",
                          "specs/rseq_area", "--preset", "linux-6.18,linux-6.19", "--format", "json", "--junit",
                          str(junit), "--out", str(tmp_path / "cx"), "--workers", "2"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ours is ignored
    t0 = time.monotonic()
    while not list((tmp_path / "cx").rglob("*.json")) and time.monotonic() - t0 < 60 and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    doc = json.loads(out)
    s = doc["summary"]
    assert doc["interrupted"] is True and s["not_run"] >= 1 and s["done"] + s["not_run"] == s["runs"]
    assert s["done"] >= 1 and doc["results"][0]["spec"] == first
    assert len(doc["results"]) == s["done"] and len(doc["not_run"]) == s["not_run"]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted: {s['not_run']} of {s['runs']} runs not run"
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == s["runs"]
    not_run = [su for su in suites if su.find("testcase/error[@type='not-checked']") is not None]
    assert len(not_run) == s["not_run"] == int(root.get("errors"))
    assert schema_problems(junit.read_text()) == []
    counts_add_up(junit.read_text())


@pytest.mark.slow
def test_every_spec_every_preset_survives_a_killed_worker(cluster):
    """All of specs/ over every preset on the LocalCluster, one worker
    killed on the way: every run comes back, and every spec's own run
    gives the verdict it expects."""
    from rseqcheck.checker.inputs import collect_specs
    from rseqcheck.checker.sweep import is_own
    from rseqcheck.model.rules import PRESETS
    from rseqcheck.model.spec import load_spec

    specs, _ = collect_specs(("specs",))
    matrix = Matrix(specs, presets=list(PRESETS))
    t0 = time.monotonic()
    got, killed, runs, combos = run_with_a_kill(cluster, matrix)
    print(f"{len(runs)} runs in {time.monotonic() - t0:.1f} s")
    assert len(killed) == 1
    assert [i for i, _ in got] == list(range(len(runs)))
    own = [o for i, o in got if is_own(load_spec(runs[i].spec), combos[runs[i].combo])]
    assert len(own) >= len(specs) - 10  # a spec's own preset is on the list, unless its rules are set
    assert all(o.ok for o in own), [o.path for o in own if not o.ok]
