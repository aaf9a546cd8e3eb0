"""The on-disk cache of generated engines (checker/engines/engine_cache.py): a
second compile of the same system loads it, and searches the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rseqcheck.checker.engines import engine_cache
from rseqcheck.checker.engines.compile import compile_packed
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
RUNG = ROOT / "benchmarks" / "specs" / "ladder_t2_k1.toml"  # 156 actions: cached
VIOLATION = ROOT / "specs" / "librseq" / "percpu_counter_cpu_outside.toml"  # 82 actions


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RSEQCHECK_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RSEQCHECK_NO_CACHE", raising=False)
    monkeypatch.setattr(engine_cache, "STATS", engine_cache.Counter())
    return tmp_path


def _summary(res) -> tuple:
    return (res.verdict, res.prop, res.stats.states, res.stats.transitions, res.stats.depth, res.trace)


@pytest.mark.parametrize("path, por", [(RUNG, True), (RUNG, False), (VIOLATION, False)])
def test_second_compile_is_a_hit_with_identical_results(cache, monkeypatch, path, por):
    monkeypatch.setattr(engine_cache, "MIN_ACTIONS", 1)
    spec = load_spec(path)
    first = bfs(build_system(spec), spec.depth, por=por)
    assert engine_cache.STATS == {"miss": 1, "store": 1}
    assert len(list(cache.glob("packed-*.marshal"))) == 1
    system = build_system(spec)  # a new build: same IR, new objects
    pk = compile_packed(system)
    assert engine_cache.STATS["hit"] == 1
    again = bfs(system, spec.depth, por=por)
    assert engine_cache.STATS == {"miss": 1, "store": 1, "hit": 2}
    assert _summary(again) == _summary(first)
    assert pk.source.startswith("def succ(s, out):")


def test_other_system_other_entry(cache, monkeypatch):
    monkeypatch.setattr(engine_cache, "MIN_ACTIONS", 1)
    spec = load_spec(RUNG)
    compile_packed(build_system(spec))
    spec.rules["next_syscall.on_signal"] = "save-restore"  # another IR: never the first's engine
    compile_packed(build_system(spec))
    assert engine_cache.STATS == {"miss": 2, "store": 2}
    assert len(list(cache.glob("packed-*.marshal"))) == 2
    monkeypatch.setattr(engine_cache, "MAX_ENTRIES", 1)
    (cache / ".packed-x.tmp").write_bytes(b"")  # a writer that died long ago
    os.utime(cache / ".packed-x.tmp", (0, 0))
    spec.rules["next_syscall.on_signal"] = "keep"
    compile_packed(build_system(spec))  # stored, and the two older entries pruned
    assert len(list(cache.iterdir())) == 1


def test_damaged_entry_is_regenerated(cache):
    system = build_system(load_spec(RUNG))
    compile_packed(system)
    (entry,) = cache.glob("packed-*.marshal")
    entry.write_bytes(entry.read_bytes()[:100])
    compile_packed(system)
    assert engine_cache.STATS == {"miss": 1, "store": 2, "error": 1}
    compile_packed(system)
    assert engine_cache.STATS["hit"] == 1


def test_small_systems_and_no_cache_bypass(cache, monkeypatch):
    compile_packed(build_system(load_spec(VIOLATION)))  # below MIN_ACTIONS
    monkeypatch.setenv("RSEQCHECK_NO_CACHE", "1")
    compile_packed(build_system(load_spec(RUNG)))
    assert not engine_cache.STATS and not list(cache.iterdir())


def test_cli_second_run_takes_the_cache(cache, tmp_path):
    """Two processes: the second loads what the first stored; --no-cache
    neither loads nor stores.  The counter is printed by a child that runs
    the CLI in-process."""
    probe = ("import sys; from rseqcheck.checker.engines import engine_cache; from rseqcheck.checker.cli.app import main\n"
             "try: main(sys.argv[1:])\n"
             "except SystemExit as e: print(dict(engine_cache.STATS), e.code, file=sys.stderr)\n")
    env = {**os.environ, "RSEQCHECK_CACHE_DIR": str(cache)}

    def run(*args: str) -> tuple[str, str]:
        p = subprocess.run([sys.executable, "-c", probe, "verify", "-q", "--format", "json", "--out",
                            str(tmp_path / "cx"), *args, str(RUNG)], cwd=ROOT, env=env, capture_output=True,
                           text=True)
        return p.stdout, p.stderr.strip().splitlines()[-1]

    out1, err1 = run()
    out2, err2 = run()
    out3, err3 = run("--no-cache")
    assert err1 == "{'miss': 1, 'store': 1} 0"
    assert err2 == "{'hit': 1} 0"
    assert err3 == "{} 0"
    strip = [{k: v for k, v in r.items() if "second" not in k} for r in
             (__import__("json").loads(o)["results"][0] for o in (out1, out2, out3))]
    assert strip[0] == strip[1] == strip[2]
    assert strip[0]["verdict"] == "holds" and strip[0]["states"] > 0


def test_concurrent_writers_leave_whole_entries(cache):
    """Writers of one entry and a reader at once: the reader sees a whole
    value or none (write-then-rename), never a torn one."""
    import threading

    values = [(w, "x" * 200_000, list(range(1000))) for w in range(4)]
    seen: list = []

    def write(v) -> None:
        for _ in range(15):
            engine_cache.store("packed-race", v)

    def read() -> None:
        for _ in range(60):
            seen.append(engine_cache.load("packed-race"))

    ts = [threading.Thread(target=write, args=(v,)) for v in values] + [threading.Thread(target=read)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert engine_cache.STATS["error"] == 0 and engine_cache.STATS["store"] == 60
    assert all(v is None or tuple(v) in [tuple(x) for x in values] for v in seen)
    assert [p.name for p in cache.iterdir()] == ["packed-race.marshal"]


def test_other_engine_version_is_a_miss(cache, monkeypatch):
    system = build_system(load_spec(RUNG))
    compile_packed(system)
    monkeypatch.setattr(engine_cache, "_version", "f" * 32)  # as if checker/engines/compile.py had changed
    compile_packed(system)
    assert engine_cache.STATS == {"miss": 2, "store": 2}
    assert len(list(cache.iterdir())) == 2
