"""mm_cid (model/mmcid.py): the id switch_mm_cid gives a task at each
switch-in, copied into rseq.mm_cid with the ids (6.3+).  Expectations are
derived in comments from af7f588d8f73's guarantee: unique among the
running threads of the mm, below min(CPUs, threads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.rules import PRESETS
from rseqcheck.model.spec import load_spec

from tests.test_data import two
from tests.util import Space, system_of

ROOT = Path(__file__).resolve().parent.parent
COUNTER = ROOT / "specs" / "mm_cid" / "mm_cid_counter_linux618.toml"
OUTSIDE = ROOT / "specs" / "mm_cid" / "mm_cid_outside_linux618.toml"


def _two(preset: str = "linux-6.18", env: str = "preemption = true\nmigration = true",
         cpus: tuple[int, int] = (0, 1)) -> str:
    t0 = "        load     %r0, rseq.mm_cid\n        nop\n        load     %r0, rseq.mm_cid"
    t1 = "        load     %r1, rseq.mm_cid\n        nop"
    return two(t0, t1, preset=preset, env=env, cpus=cpus)


@pytest.mark.parametrize("preset", ["linux-6.18", "linux-6.19", "linux-7.1"])
def test_per_mm_cid_counter_holds_where_mm_cid_exists(preset: str) -> None:
    spec = load_spec(COUNTER)
    spec.preset = preset
    res = bfs(build_system(spec), 200)
    assert res.verdict == "holds" and res.exhausted, preset


def test_counter_pair_figures() -> None:
    ok = bfs(build_system(load_spec(COUNTER)), 200)
    assert (ok.verdict, ok.stats.states) == ("holds", 114_041)
    system = build_system(load_spec(OUTSIDE))
    bad = bfs(system, 200)
    assert (bad.verdict, bad.prop, len(bad.trace) - 1) == ("violation", "assert", 26)
    labels = [system.actions[a].label for a, _ in bad.trace[1:]]
    # the lost update needs an id to move: some thread is switched in
    # with an id other than its first
    assert any("runs T0 (mm_cid 1" in lab or "runs T1 (mm_cid 0" in lab for lab in labels)


@pytest.mark.parametrize("preset", ["linux-6.19", "linux-7.1"])
def test_trusting_an_old_id_loses_updates_on_r1_and_r2(preset: str) -> None:
    # the same 26-step interleaving: R1/R2 mark ids_changed when the id
    # changes at a switch-in, so T1's field is rewritten; T0's register
    # keeps the old id
    spec = load_spec(OUTSIDE)
    spec.preset = preset
    res = bfs(build_system(spec), 200)
    assert (res.verdict, res.prop, len(res.trace) - 1) == ("violation", "assert", 26)


def _running_ids(sp: Space, s: tuple) -> list[int]:
    sh = sp.shown(s)
    return [int(sh[f"{t}.mm_cid"]) for t in ("T0", "T1") if sh[f"cpu{int(sh.get(f'{t}.cpu', t[1]))}.curr"] == t]


@pytest.mark.parametrize("preset", ["linux-6.18", "linux-6.19", "linux-7.1"])
def test_running_threads_never_share_an_id_and_ids_stay_below_k(tmp_path: Path, preset: str) -> None:
    # two threads, two CPUs, preemption and migration: in every reachable
    # state the threads on a CPU hold distinct ids, all below min(2, 2)
    sp = Space(system_of(tmp_path, _two(preset)))
    for s in sp.states:
        ids = _running_ids(sp, s)
        assert len(ids) == len(set(ids)) and all(0 <= i < 2 for i in ids), sp.shown(s)
    # and the ids do move: each thread is seen running with each id
    assert sp.any(T0__mm_cid=1, cpu0__curr="T0") or sp.any(T0__mm_cid=1, cpu1__curr="T0")
    assert sp.any(T1__mm_cid=0, cpu1__curr="T1") or sp.any(T1__mm_cid=0, cpu0__curr="T1")


def test_ids_change_only_at_a_switch_in(tmp_path: Path) -> None:
    system = system_of(tmp_path, _two())
    idx = system.index()
    cids = [idx[v] for v in system.vars if v.name.endswith(".mm_cid") and not v.name.endswith("rseq.mm_cid")]
    bad: list[str] = []

    def step(s: tuple, a: int, t: tuple) -> None:
        if any(s[i] != t[i] for i in cids):
            lab = system.actions[a].label
            if "__schedule runs" not in lab and "switches to" not in lab and "exit: the thread ends" not in lab:
                bad.append(lab)

    Space(system, on_step=step)
    assert bad == []


@pytest.mark.parametrize("preset", ["linux-6.18", "linux-6.19", "linux-7.1"])
def test_field_is_the_id_when_user_code_runs(tmp_path: Path, preset: str) -> None:
    # legacy kernels rewrite the ids (mm_cid included) at every
    # notify-resume, and a switch-in follows a switch-out that set
    # NOTIFY_RESUME; R1/R2 mark ids_changed when the id differs and raise
    # the work at the switch-in: either way, in user mode, a running
    # registered thread's field is its id
    sp = Space(system_of(tmp_path, _two(preset)))
    for s in sp.states:
        sh = sp.shown(s)
        for t in ("T0", "T1"):
            if sh[f"{t}.k"] == "USER" and sh[f"cpu{sh[f'{t}.cpu']}.curr"] == t:
                assert sh[f"{t}.rseq.mm_cid"] == sh[f"{t}.mm_cid"], sh


@pytest.mark.parametrize("preset", [p for p in PRESETS if PRESETS.index(p) < PRESETS.index("linux-6.18")])
def test_mm_cid_is_refused_before_6_3(tmp_path: Path, preset: str) -> None:
    text = _two(preset)
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, text)
    line = next(i for i, ln in enumerate(text.split("\n"), start=1) if "rseq.mm_cid" in ln)
    assert e.value.line == line and "struct rseq has no mm_cid before 6.3" in e.value.message


def test_refusal_is_file_line_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "old.toml"
    p.write_text(_two("linux-6.0"))
    r = subprocess.run([sys.executable, "-m", "rseqcheck.checker.cli", "verify", str(p), "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and f"{p}:" in r.stderr + r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize(("fork", "cpus", "message"), [
    (True, (0, 1), "fork with rseq.mm_cid is not modelled"),
    (False, (0, 0), "rseq.mm_cid: threads that start on one CPU are not modelled"),
])
def test_what_the_model_refuses(tmp_path: Path, fork: bool, cpus: tuple[int, int], message: str) -> None:
    text = _two(cpus=cpus)
    if fork:
        text = text.replace("        nop\n        load     %r0", "        fork     T1\n        load     %r0", 1)
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, text)
    assert e.value.message.startswith(message), e.value.message
