"""The data machine (model/data.py, model/cpus.py): registers, per-CPU
arrays, the rseq area's fields and CPUs.  Every expectation is derived by
hand in the test's comment from the kernel function it cites or from the
instruction's meaning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rseqcheck.checker.engines.explicit import bfs
from rseqcheck.checker.outcomes import final_outcomes, model_outcomes, projection_for
from rseqcheck.model import data
from rseqcheck.model.build import build_system
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import Const, IntRange, Ref, Var, evaluate
from rseqcheck.model.program import parse_code
from rseqcheck.model.rules import PRESETS
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent


def two(t0: str, t1: str, *, preset: str = "linux-6.18", env: str = "", variables: str = "", extra: str = "",
        cpus: tuple[int | None, int | None] = (None, None), outcomes: str = "", props: str = '"no-unexpected-kill"') -> str:
    def cpu(c: int | None) -> str:
        return f"cpu = {c}\n" if c is not None else ""

    second = f'[thread.T1]\n{cpu(cpus[1])}code = """\n{t1}\n"""\n' if t1 else ""
    return f'''[spec]
title = "t"
preset = "{preset}"
[environment]
{env}
[variables]
{variables}
[thread.T0]
{cpu(cpus[0])}code = """
{t0}
"""
{second}
{extra}
[outcomes]
{outcomes}
[check]
properties = [{props}]
depth = 300
'''


def load(tmp_path: Path, text: str):
    p = tmp_path / "t.toml"
    p.write_text(text)
    return load_spec(p)


def outcomes(tmp_path: Path, text: str) -> set[str]:
    res = model_outcomes(load(tmp_path, text))
    assert res.complete
    return {str(o) for o in res.allowed}


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), start=1) if fragment in line)


INC = """
        load     %r0, x
        add      %r0, 1
        store    x, %r0
"""


# ------------------------------------------------------------------ parsing


def test_operands_parse() -> None:
    seg = parse_code("""
a:  load  %r0, rseq.cpu_id
    load  %r1, counter[%r0]
    load  %r2, counter[1]
    add   %r1, %r2
    sub   %r1, -3
    store counter[%r0], %r1
    store x, 3
    mov   %r15, %r1
    blt   %r1, %r2, a
    bge   x, 2, a
    beq   rseq_ret, EINVAL, a
""", "T0", "thread", "f", 1)
    got = [(i.op, i.args) for i in seg.instrs[:-1]]
    assert got == [
        ("load", ("%r0", "rseq.cpu_id")), ("load", ("%r1", "counter[%r0]")), ("load", ("%r2", "counter[1]")),
        ("add", ("%r1", "%r2")), ("sub", ("%r1", -3)), ("store", ("counter[%r0]", "%r1")), ("store", ("x", 3)),
        ("mov", ("%r15", "%r1")), ("blt", ("%r1", "%r2", "a")), ("bge", ("x", 2, "a")),
        ("beq", ("rseq_ret", "EINVAL", "a")),
    ]
    # v0 forms are still v0 (model/user.py keeps their semantics)
    assert [data.is_data(i) for i in seg.instrs[:-1]] == [True] * 6 + [False, True, True, True, False]


@pytest.mark.parametrize(("line", "message"), [
    ("mov   x, 1", "mov takes REG, SRC"),
    ("mov   %r16, 1", "register %r16 is out of range: the registers are %r0..%r15"),
    ("add   c[%r16], 1", "register %r16 is out of range: the registers are %r0..%r15"),
    ("load  %rax, x", "'%rax' is not a register: the registers are %r0..%r15"),
    ("assert %r99 == 0", "register %r99 is out of range: the registers are %r0..%r15"),
    ("load  %r0, 5", "load takes REG, MEM"),
    ("load  x, y", "load takes REG, MEM"),
    ("store %r0, 1", "store takes MEM, VALUE"),
    ("store x, y", "store value 'y' is not an integer or a register"),
    ("add   x, y", "add takes DST, SRC"),
    ("blt   %r0, EINVAL, a", "blt: 'EINVAL' is not an integer, a register"),
    ("bge   %r0, 1", "bge takes A, B, LABEL"),
    ("load  %r0, tls.a[%r1]", "load takes REG, MEM"),
])
def test_bad_operands_are_spec_errors_at_their_line(tmp_path: Path, line: str, message: str) -> None:
    text = two(f"a:  nop\n    {line}", "", variables="x = [0, 3]")
    with pytest.raises(SpecError) as e:
        load(tmp_path, text)
    assert e.value.line == _line_of(text, line), str(e.value)
    assert e.value.message.startswith(message), e.value.message


@pytest.mark.parametrize(("code", "variables", "message"), [
    ("load %r0, y", "", "y: declare its range in [variables]"),
    ("load %r0, c[%r0]", "", "c[...]: no per-CPU array c"),
    ("load %r0, c[2]", '"c[cpu]" = [0, 1]', "c[2]: the array has 2 slots"),
    ("load %r0, c", '"c[cpu]" = [0, 1]', "c is a per-CPU array: index it"),
    ("load %r0, rseq.flags", "", "rseq.flags: the rseq area's fields are"),
    ("store rseq.node_id, 1", "", "rseq.node_id cannot be written"),
    # named without a slot by a non-data instruction: said "declare its range in [variables]"
    ("add c, 1", '"c[cpu]" = [0, 1]', "c is a per-CPU array: index it"),
    ("store c, 1", '"c[cpu]" = [0, 1]', "c is a per-CPU array: index it"),
    # the same names in an assert: the assert's line too
    ("assert c[0] == 0", "", "c[...]: no per-CPU array c"),
    ("assert c[2] == 0", '"c[cpu]" = [0, 1]', "c[2]: the array has 2 slots"),
    ("assert rseq.cpuid == 0", "", "rseq.cpuid: the rseq area's fields are"),
])
def test_bad_data_is_refused_at_build(tmp_path: Path, code: str, variables: str, message: str) -> None:
    text = two(code, "", variables=variables)
    with pytest.raises(SpecError) as e:
        build_system(load(tmp_path, text))
    assert e.value.line == _line_of(text, code) and e.value.message.startswith(message), str(e.value)


def test_variables_table_refuses_bad_shapes(tmp_path: Path) -> None:
    for decl, msg in (('"rseq_ret" = [0, 1]', "'rseq_ret' is reserved"),
                      ('"a[cpu]" = [0, 1]\na = [0, 1]', "a is declared both"),
                      ('"a[4]" = [0, 1]', "variable name 'a[4]' is not an identifier")):
        with pytest.raises(SpecError) as e:
            load(tmp_path, two("nop", "", variables=decl))
        assert msg in e.value.message, e.value.message


def test_thread_cpu_is_checked(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        load(tmp_path, two("nop", "", cpus=(2, None)))
    assert e.value.message == "cpu = 2 is out of range 0..1 ([environment] cpus = 2)"


# ------------------------------------------------------------ arithmetic


@given(st.integers(-40, 40), st.integers(-5, 0), st.integers(0, 6))
def test_wrap_is_modulo_the_destination_range(x: int, lo: int, hi: int) -> None:
    v = Var("v", IntRange(-40, 40))
    got = evaluate(data.wrap(Ref(v), -40, 40, lo, hi), {v: x})
    assert lo <= got <= hi and (got - x) % (hi - lo + 1) == 0


def test_register_arithmetic_and_ordered_branches(tmp_path: Path) -> None:
    # %r0 = 2 - 5 = -3 (z's range puts -3 in the registers' hull); blt
    # -3 < 0 is taken, bge -3 >= -2 is not: y = 1; w = -3 + 4 = 1.
    text = two("""
        mov      %r0, 2
        sub      %r0, 5
        blt      %r0, 0, neg
        store    y, 3
neg:    bge      %r0, -2, bad
        store    y, 1
        jmp      pos
bad:    store    y, 2
pos:    mov      %r1, %r0
        add      %r1, 4
        add      w, %r1
""", "", variables="w = [0, 3]\ny = [0, 3]\nz = [-3, 0]")
    assert outcomes(tmp_path, text) == {"exit; w=1 y=1"}


def test_register_arithmetic_wraps_around_the_hull(tmp_path: Path) -> None:
    # the hull is -2..5 here (constants and ranges): 2 - 5 = -3 wraps to 5
    text = two("mov %r0, 2\nsub %r0, 5\nstore y, %r0", "", variables="y = [-2, 5]")
    assert outcomes(tmp_path, text) == {"exit; y=5"}


def test_index_outside_the_array_faults(tmp_path: Path) -> None:
    # cpus = 2: slots 0 and 1; index 2 faults (SIGSEGV) before the load.
    text = two("mov %r0, 2\nload %r1, c[%r0]\nstore y, 1", "", variables='"c[cpu]" = [0, 1]\ny = [0, 1]')
    assert outcomes(tmp_path, text) == {"killed by SIGSEGV; c[0]=0 c[1]=0 y=0"}


# ------------------------------------------------------------ CPUs


def test_threads_on_one_cpu_without_preemption_are_serialized(tmp_path: Path) -> None:
    # Both threads on CPU 0, nothing forces a switch: T0 runs to its exit
    # (do_exit -> __schedule releases the CPU), then T1: x = 2 only.
    text = two(INC, INC, variables="x = [0, 2]", cpus=(0, 0))
    assert outcomes(tmp_path, text) == {"exit; x=2"}
    # On two CPUs they interleave: the lost update x = 1 is possible.
    assert outcomes(tmp_path, two(INC, INC, variables="x = [0, 2]", cpus=(0, 1))) == {"exit; x=1", "exit; x=2"}


def test_preemption_lets_the_other_thread_of_the_cpu_run(tmp_path: Path) -> None:
    # With ticks, T0 can be switched out between its load and its store
    # (exit loop: NEED_RESCHED -> schedule() switches to T1): x = 1 too.
    text = two(INC, INC, variables="x = [0, 2]", cpus=(0, 0), env="preemption = true")
    assert outcomes(tmp_path, text) == {"exit; x=1", "exit; x=2"}


def test_no_thread_steps_while_its_cpu_runs_another(tmp_path: Path) -> None:
    # model/cpus.py: a thread's own steps (user or kernel) fire only in
    # states where its CPU runs it; checked on every reachable transition.
    from tests.util import Space

    system = build_system(load(tmp_path, two(INC, INC, variables="x = [0, 2]", cpus=(0, 0),
                                              env="preemption = true")))
    curr = system.index()[system.var("cpu0.curr")]
    names = system.var("cpu0.curr").type.names
    checked = 0

    def check(s: tuple, a: int, _t: tuple) -> None:
        nonlocal checked
        act = system.actions[a]
        if act.actor != "env" and "is idle" not in act.label:
            assert names[s[curr]] == act.proc, (act.label, names[s[curr]])
            checked += 1

    Space(system, on_step=check)
    assert checked > 100
    labels = {system.actions[a].label for a in range(len(system.actions))}
    assert any("(switches to T1)" in lab for lab in labels) and any("(switches to T0)" in lab for lab in labels)


# ------------------------------------------------------------ registers and signals


def test_handler_registers_are_saved_and_restored(tmp_path: Path) -> None:
    system = build_system(load_spec(ROOT / "specs/librseq/handler_clobbers_registers.toml"))
    names = {v.name for v in system.vars}
    # frames save %r0 (the handler writes it), at both nesting levels
    assert {"T0.%r0", "T0.f1.%r0", "T0.f2.%r0"} <= names
    assert bfs(system, 60, por=False).verdict == "holds"


def test_registers_the_handler_does_not_write_are_not_saved(tmp_path: Path) -> None:
    handler = '[handler.SIGUSR1]\ncode = """\n        nop\n"""'
    text = two("mov %r3, 1\nnop\nassert %r3 == 1", "", env='signals = ["SIGUSR1"]\nmax_signals = 1', extra=handler)
    names = {v.name for v in build_system(load(tmp_path, text)).vars}
    assert "T0.%r3" in names and not any(".f1.%r" in n for n in names)


# ------------------------------------------------ dead register reduction


@pytest.mark.parametrize("name", ["percpu_counter_cpu_outside", "percpu_cmpxchg", "percpu_counter_two_stores"])
def test_dead_register_reduction_changes_no_outcome(name: str, monkeypatch) -> None:
    spec = load_spec(ROOT / f"specs/librseq/{name}.toml")
    reduced = build_system(spec)
    r = bfs(reduced, spec.depth, por=False)
    out_r = final_outcomes(reduced, projection_for(reduced))
    monkeypatch.setattr(data, "dead_after", lambda b, seg, always: [set() for _ in seg.instrs])
    full = build_system(spec)
    f = bfs(full, spec.depth, por=False)
    out_f = final_outcomes(full, projection_for(full))
    assert (r.verdict, r.prop, len(r.trace or [])) == (f.verdict, f.prop, len(f.trace or []))
    assert out_r.allowed == out_f.allowed
    assert r.stats.states < f.stats.states


def test_dead_after_follows_branches_and_aborts(tmp_path: Path) -> None:
    # %r0 is read at `abort`'s target: live everywhere in the section, and
    # dead after the store that follows the section (nothing reads it).
    text = two("""
retry:  load     %r0, rseq.cpu_id
        rseq_cs  cs1
begin:  nop
        store    x, 1
end:    store    x, %r0
        exit
abort:  jmp      retry
""", "", variables="x = [0, 1]", extra='[rseq_cs.cs1]\nstart = "begin"\npost_commit = "end"\nabort = "abort"')
    system = build_system(load(tmp_path, text))
    b = system.meta["builder"]
    dead = data.dead_after(b, b.spec.threads[0].segment, set())
    # load, rseq_cs, nop, store 1: %r0 live (read at `end`, and the abort
    # path reloads it); after the read, the exit and the jmp (to the load
    # that redefines it): dead
    assert [sorted(d) for d in dead] == [[], [], [], [], ["%r0"], ["%r0"], ["%r0"]]


# ------------------------------------------------------------ the rseq area


def _area(tmp_path: Path, preset: str, code: str, **kw) -> set[str]:
    return outcomes(tmp_path, two(code, "", preset=preset, variables="s = [-2, 1]\nc = [-2, 1]", **kw))


RECORD = """
        load     %r0, rseq.cpu_id_start
        store    s, %r0
        load     %r0, rseq.cpu_id
        store    c, %r0
"""


@pytest.mark.parametrize("preset", PRESETS)
def test_unregistration_values_per_preset(tmp_path: Path, preset: str) -> None:
    # kernel/rseq.c: rseq_reset_rseq_cpu_node_id (legacy) writes
    # cpu_id_start = 0, cpu_id = -1; 6.19's rseq_reset_ids writes -1 to
    # both; 7.1 restores cpu_id_start = 0.  The thread is on CPU 1.
    start = -1 if preset == "linux-6.19" else 0
    got = _area(tmp_path, preset, "rseq_unregister\n" + RECORD, cpus=(1, None))
    assert got == {f"exit; c=-1 s={start}"}


@pytest.mark.parametrize("preset", PRESETS)
def test_ids_at_start_and_without_glibc(tmp_path: Path, preset: str) -> None:
    # glibc registered before the first instruction: the ids are the CPU.
    assert _area(tmp_path, preset, RECORD, cpus=(1, None)) == {"exit; c=1 s=1"}
    # GLIBC_TUNABLES=glibc.pthread.rseq=0: glibc marks cpu_id
    # RSEQ_CPU_ID_REGISTRATION_FAILED (-2), cpu_id_start stays 0; a later
    # rseq() of the TLS area makes the kernel write the ids on the way out
    # (legacy: NOTIFY_RESUME; 6.19+: rseq_force_update).
    got = _area(tmp_path, preset, RECORD + "rseq_register\n" + RECORD.replace("s,", "s,").replace("store    s", "store    s"),
                cpus=(1, None), env="glibc_rseq = false")
    assert got == {"exit; c=1 s=1"}
    assert _area(tmp_path, preset, RECORD, cpus=(1, None), env="glibc_rseq = false") == {"exit; c=-2 s=0"}


def test_user_write_to_cpu_id_breaks_accuracy(tmp_path: Path) -> None:
    # the ABI makes cpu_id read-only for user space; a program that writes
    # it is what rseq-cpu-id-accurate reports, at the next instruction.
    text = two("store rseq.cpu_id, 1\nnop", "", props='"rseq-cpu-id-accurate"')
    r = bfs(build_system(load(tmp_path, text)), 20, por=False)
    assert (r.verdict, r.prop, len(r.trace) - 1) == ("violation", "rseq-cpu-id-accurate", 2)


def test_legacy_rewrites_cpu_id_start_on_every_preemption_r1_only_on_migration(tmp_path: Path) -> None:
    # tcmalloc's overlay: the thread stores 8 into cpu_id_start; a tick
    # preempts it.  Legacy (6.18): the notify-resume rewrites it to the CPU
    # (rseq_update_cpu_node_id), so s = 0 is reachable; 6.19: written only
    # when the ids changed, and with one CPU nothing changes: s = 8 always;
    # 7.1 legacy mode (32-byte registration): every switch marks them
    # changed: s = 0 reachable again.
    code = "store rseq.cpu_id_start, 8\nnop\nload %r0, rseq.cpu_id_start\nstore s, %r0"
    env = "preemption = true\ncpus = 1"
    for preset, want in (("linux-6.18", {"exit; s=0", "exit; s=8"}), ("linux-6.19", {"exit; s=8"}),
                         ("linux-7.1", {"exit; s=0", "exit; s=8"})):
        got = outcomes(tmp_path, two(code, "", preset=preset, variables="s = [0, 8]", env=env))
        assert got == want, preset


# ------------------------------------------------------------ the bundled specs


@pytest.mark.parametrize("preset", PRESETS)
def test_percpu_counter_holds_on_every_preset(preset: str) -> None:
    spec = dataclasses.replace(load_spec(ROOT / "specs/librseq/percpu_counter.toml"), preset=preset)
    r = bfs(build_system(spec), spec.depth, por=False)
    assert (r.verdict, r.exhausted) == ("holds", True), preset


@pytest.mark.parametrize("preset", PRESETS)
def test_cpu_id_accurate_on_every_preset(preset: str) -> None:
    spec = dataclasses.replace(load_spec(ROOT / "specs/rseq_area/cpu_id_migration_linux618.toml"), preset=preset)
    r = bfs(build_system(spec), spec.depth, por=False)
    assert (r.verdict, r.exhausted) == ("holds", True), preset


@pytest.mark.parametrize("preset", PRESETS)
def test_tcmalloc_fence_per_preset(preset: str) -> None:
    # Before 5.10 there is no MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ (-EINVAL):
    # no fence, the worker commits after it (violation).  5.10-6.18: the
    # IPI's notify-resume rewrites the tag (holds).  6.19: only changed ids
    # are written (violation).  7.1 legacy mode: rewritten again (holds).
    spec = dataclasses.replace(load_spec(ROOT / "specs/rseq_area/tcmalloc_overlay_fence_linux618.toml"), preset=preset)
    r = bfs(build_system(spec), spec.depth, por=False)
    broken = preset in ("linux-4.18", "linux-5.8", "linux-6.19")
    assert r.verdict == ("violation" if broken else "holds"), preset


def test_counter_trace_shows_the_lost_update() -> None:
    # the shortest run of the CPU-outside variant swaps the threads' CPUs
    # (two migrations) and ends with both sections committing 1 to counter[0]
    spec = load_spec(ROOT / "specs/librseq/percpu_counter_cpu_outside.toml")
    system = build_system(spec)
    r = bfs(system, spec.depth, por=False)
    assert (r.verdict, r.prop, len(r.trace) - 1) == ("violation", "assert", 24)
    labels = [system.actions[a].label for a, _ in r.trace[1:]]
    assert sum("migrates" in lab for lab in labels) == 2
    assert sum(lab.startswith("store    counter[%r0]") for lab in labels) == 2


def test_constants_outside_the_hull_do_not_exist() -> None:
    # the hull holds every constant and range: CPU ids and -2 included
    spec = load_spec(ROOT / "specs/rseq_area/tcmalloc_overlay_fence_linux618.toml")
    b = build_system(spec).meta["builder"]
    assert b.data_range == (-2, 8)
    assert isinstance(data.wrap(Const(3), 3, 3, 0, 8), Const)


@pytest.mark.parametrize("preset", PRESETS)
def test_kvm_run_cpu_id_per_preset(preset: str) -> None:
    # kernel/entry/kvm.c:xfer_to_guest_mode_work: before the generic xfer
    # (<= 5.8) NOTIFY_RESUME waits for the return to user, which rewrites
    # the ids; 5.10-5.14 clear it without rseq (stale cpu_id after a
    # migration inside KVM_RUN); 5.15+ write the ids there (8646e53633f3).
    spec = dataclasses.replace(load_spec(ROOT / "specs/rseq_area/kvm_run_cpu_id_linux511.toml"), preset=preset)
    r = bfs(build_system(spec), spec.depth, por=False)
    stale = preset in ("linux-5.10", "linux-5.11")
    assert (r.verdict, r.prop) == (("violation", "rseq-cpu-id-accurate") if stale else ("holds", None)), preset


AFFINITY = """
        getcpu   %r0
        sched_setaffinity 1
        getcpu   %r1
        load     %r2, rseq.cpu_id
        store    a, %r0
        store    b, %r1
        store    c, %r2
"""


@pytest.mark.parametrize("preset", PRESETS)
def test_setaffinity_moves_the_thread_and_cpu_id_follows(tmp_path: Path, preset: str) -> None:
    # kernel/sched/core.c:__set_cpus_allowed_ptr moves the thread to CPU 1
    # (set_task_cpu -> rseq_migrate); getcpu reports 0 then 1, and the ids
    # are rewritten before the return to user (legacy: notify-resume;
    # 6.19+: ids_changed, exit fast path).
    text = two(AFFINITY, "", preset=preset, variables="a = [0, 1]\nb = [0, 1]\nc = [-2, 1]", cpus=(0, None),
               props='"rseq-cpu-id-accurate", "no-unexpected-kill"')
    assert outcomes(tmp_path, text) == {"exit; a=0 b=1 c=1"}
    r = bfs(build_system(load(tmp_path, text)), 50, por=False)
    assert r.verdict == "holds"


@pytest.mark.parametrize(("rule", "want"), [("honoured", {"exit; x=1"}), ("ignored", {"exit; x=1", "exit; x=2"}),
                                             ("fatal", {"exit; x=1", "killed by SIGSEGV; x=0", "killed by SIGSEGV; x=1"})])
def test_legacy_flags_rule_choices(tmp_path: Path, rule: str, want: set[str]) -> None:
    # issue #11 item 7.  A section flagged NO_RESTART_ON_PREEMPT counts its
    # passes in x; ticks may land anywhere (kernel/rseq.c:rseq_need_restart,
    # legacy).  honoured: the PREEMPT bit is masked, never an abort: x = 1
    # only.  ignored (the flags are never read): a tick inside aborts and the
    # retry passes again: x = 2 too (more ticks, more passes: checked as a
    # subset).  fatal (6.0+): a non-zero flag with the ip inside kills at the
    # tick's notify-resume, before (x = 0) or after (x = 1) the count.
    text = two("""
retry:  rseq_cs  cs1
begin:  add      x, 1
        nop
end:    exit
abort:  jmp      retry
""", "", preset="linux-4.18", variables="x = [0, 7]", env="preemption = true",
               extra=f'[rules]\n"rseq.flags" = "{rule}"\n[rseq_cs.cs1]\nstart = "begin"\npost_commit = "end"\n'
                     'abort = "abort"\nflags = ["NO_RESTART_ON_PREEMPT"]')
    got = outcomes(tmp_path, text)
    assert want <= got and (rule == "ignored" or got == want), got


def test_pause_returns_only_for_a_signal(tmp_path: Path) -> None:
    # issue #11 item 6, kernel/signal.c:sys_pause: sleep until a signal is
    # pending, then -ERESTARTNOHAND, which a caught signal turns into -EINTR
    # (arch/x86/kernel/signal.c:handle_signal).  Without a signal the thread
    # never gets past pause (stuck); with one it does, once the handler ran,
    # unless the signal came before pause did: the classic lost wake-up
    # (the handler runs, then pause sleeps for good).
    handler = '[handler.SIGUSR1]\ncode = """\n        store h, 1\n"""'
    code = "syscall pause\nstore x, 1"
    assert outcomes(tmp_path, two(code, "", variables="x = [0, 1]")) == {"stuck; x=0"}
    got = outcomes(tmp_path, two(code, "", variables="x = [0, 1]\nh = [0, 1]", extra=handler,
                                 env='signals = ["SIGUSR1"]\nmax_signals = 1'))
    assert got == {"stuck; h=1 x=0", "exit; h=1 x=1"}


@pytest.mark.parametrize(("preset", "length", "debug", "killed"), [
    ("linux-6.18", 32, "on", False),   # legacy debug: rseq_validate_ro_fields only warns
    ("linux-6.19", 32, "off", False),  # R1: no check without the debug key
    ("linux-6.19", 32, "on", True),    # R1 debug: fatal
    ("linux-7.1", 32, "off", False),   # R2 legacy mode (32 bytes): not enforced
    ("linux-7.1", 64, "off", True),    # R2 V2 (82f572449cfe): enforced
])
def test_read_only_id_fields(tmp_path: Path, preset: str, length: int, debug: str, killed: bool) -> None:
    # a program writes cpu_id_start, then migrates: the ids change and are
    # rewritten, and the check (where there is one) finds the user's value
    spec = load_spec(ROOT / "specs/rseq_area/tcmalloc_overlay_v2_linux71.toml")
    spec = dataclasses.replace(spec, preset=preset, rules={"rseq.debug": debug})
    seg = spec.threads[0].segment
    seg.instrs[0].args = ("tls", length, "RSEQ_SIG")
    r = bfs(build_system(spec), spec.depth, por=False)
    assert r.verdict == ("violation" if killed else "holds"), (preset, length, debug)


def test_index_fault_goes_to_a_sigsegv_handler(tmp_path: Path) -> None:
    # the out-of-bounds access is a page fault from user mode
    # (do_user_addr_fault -> force_sig_fault SIGSEGV): the handler runs
    # (h = 1) and ends the thread, as `fault SIGSEGV` would; the load and
    # the store after it never run.
    handler = '[handler.SIGSEGV]\ncode = """\n        store h, 1\n        exit\n"""'
    text = two("mov %r0, 2\nload %r1, c[%r0]\nstore y, 1", "", variables='"c[cpu]" = [0, 1]\ny = [0, 1]\nh = [0, 1]',
               extra=handler)
    assert outcomes(tmp_path, text) == {"exit; c[0]=0 c[1]=0 h=1 y=0"}


@pytest.mark.parametrize("name", ["bad", "killed"])
def test_user_variable_named_like_a_model_variable(tmp_path: Path, name: str) -> None:
    text = two(f"nop\nstore {name}, 1", "")
    with pytest.raises(SpecError) as e:
        build_system(load(tmp_path, text))
    assert (e.value.line, e.value.message) == (_line_of(text, f"store {name}, 1"),
                                               f"'{name}' is the name of a model variable; rename the user variable")


@pytest.mark.parametrize(("code", "verdict", "depth"), [
    # the slot the register names: CPU 1's
    ("load %r0, rseq.cpu_id\nadd c[%r0], 1\nassert c[%r0] == 1 && c[1] == 1 && c[0] == 0", "holds", None),
    ("load %r0, rseq.cpu_id\nadd c[%r0], 1\nassert c[%r0] == 0", "violation", 3),
    # out of the array's range: the assert fails (an instruction would fault)
    ("mov %r0, 5\nassert c[%r0] == 0", "violation", 2),
])
def test_an_assert_reads_the_slot_a_register_names(tmp_path: Path, code: str, verdict: str, depth) -> None:
    """It was refused ("cannot parse expression ... at '[%r0]'")."""
    from rseqcheck.checker.engines import symbolic

    text = two(code, "", variables='"c[cpu]" = [0, 3]', env="cpus = 2", cpus=(1, None))
    for engine in ("explicit", "bmc"):
        system = build_system(load(tmp_path, text))
        r = bfs(system, 20, por=False) if engine == "explicit" else symbolic.bmc(system, 20)
        assert r.verdict == verdict, engine
        if depth is not None:
            assert (r.prop, len(r.trace) - 1) == ("assert", depth), engine


def test_a_property_cannot_name_a_slot_by_register(tmp_path: Path) -> None:
    text = two("nop", "", variables='"c[cpu]" = [0, 3]', props='"always c[%r0] == 0"')
    with pytest.raises(SpecError) as e:
        build_system(load(tmp_path, text))
    assert "c[%r0] is per thread; a property reads global user variables and per-CPU slots" in e.value.message
