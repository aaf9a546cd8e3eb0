"""Assemble the IR `System` of a spec: lay out the variables the spec
needs (the steps that ask the mechanism modules what the programs use),
then let each mechanism module add its actions.  The toolkit they share
(Builder, TV, Case, ...) is model/builder.py; imports run one way:
toolkit <- mechanisms <- this assembly.
"""

from __future__ import annotations

from rseqcheck.model import cpus, data, delivery, entry, environment, glibc, lifecycle, mmcid, progress, user
from rseqcheck.model import signals as sigmod
from rseqcheck.model.builder import PHASES, SPECIAL_VARS, TV, Builder
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import Bool, Enum, Eq, IntRange, Ne, Or, Property, System
from rseqcheck.model.program import RET_VALUES, RSEQ_ERRORS, expr_ints, expr_vars, is_reg
from rseqcheck.model.properties import PROPERTIES
from rseqcheck.model.spec import Spec
from rseqcheck.model.symmetry import thread_group, thread_symmetries
from rseqcheck.model.syscalls import AX, SYSCALLS


def make_builder(spec: Spec) -> Builder:
    """A Builder with every variable of the spec, and no action yet."""
    b = Builder(spec)
    b.oncpu = cpus.oncpu  # the toolkit's add() and on_cpu() ask model/cpus.py
    _layout(b)
    _globals(b)
    b.threads = [_thread(b, t) for t in spec.threads]
    return b


def _layout(b: Builder) -> None:
    """What the programs use, which decides the variables (after the code
    is placed: Builder._place_code)."""
    spec = b.spec
    # CPU data: per-CPU arrays, the rseq area's fields, placed threads
    b.uses_fields = data.uses_fields(b.code) or "rseq-cpu-id-accurate" in b.checked
    cid_lines = [ins.line for _, ins in b.code if "rseq.mm_cid" in data.operands(ins)
                 or (ins.op == "assert" and "rseq.mm_cid" in data._expr_names(ins))]
    b.uses_cid = bool(cid_lines)
    b.affinity = any(ins.op == "sched_setaffinity" for _, ins in b.code)
    b.cpu_data = (b.uses_fields or bool(spec.arrays) or any(t.cpu is not None for t in spec.threads)
                  or b.affinity or any(ins.op == "getcpu" for _, ins in b.code))
    for _, ins in b.code:
        if ins.op == "sched_setaffinity" and ins.args[0] >= spec.env.cpus:
            raise SpecError(spec.path, ins.line, f"sched_setaffinity {ins.args[0]}: cpus = {spec.env.cpus}")
    # (a registration of an unmapped area makes every rseq fixup fault)
    b.uses_rseq = b.uses_fields or any(
        ins.op == "rseq_cs" or (ins.op == "rseq_register" and ins.args[0] == "unmapped") for _, ins in b.code)
    b.sud_regions = b.find_sud_regions()
    # Signals the environment can send; the ignored ones are dropped at
    # generation (kernel/signal.c:sig_ignored).  Kernel-generated ones
    # (SIGSYS from SUD) join them; `sigs` is in dequeue order.
    b.env_sigs = [s for s in b.env.signals if b.sig_action(s) != "ignore"]
    b.user_tf = any(ins.op in ("set_tf", "clear_tf") for _, ins in b.code)
    b.stepping = b.user_tf or any(t.ptrace_step for t in spec.threads)
    b.syscall_tracing = any(t.ptrace_syscall for t in spec.threads)
    seccomp_trap = any("trap" in t.seccomp.values() for t in spec.threads)
    kernel_sigs = {"SIGSYS"} if b.sud_regions or seccomp_trap else set()
    if b.stepping:
        kernel_sigs.add("SIGTRAP")  # exc_debug_user / user_single_step_report
    kernel_sigs |= {ins.args[0] for _, ins in b.code if ins.op == "fault"}
    if b.sig_action("SIGSEGV") == "handler" and any("[%r" in a for _, ins in b.code for a in data.operands(ins)):
        kernel_sigs.add("SIGSEGV")  # an array index out of bounds faults: a catchable SIGSEGV (model/user.py)
    if b.stepping and any(ins.op == "fault" for _, ins in b.code):
        raise SpecError(b.spec.path, next(ins.line for _, ins in b.code if ins.op == "fault"),
                        "fault with single-stepping is not modelled")
    if b.uses_rseq and b.sig_action("SIGSEGV") == "handler":
        kernel_sigs.add("SIGSEGV")  # an rseq failure's force_sig is catchable (model/rseq.py:catchable)
    b.sigs = sigmod.dequeue_order(sorted(set(b.env_sigs) | kernel_sigs))
    if not any(b.sig_action(s) == "handler" for s in b.sigs):
        b.N = 0  # no frame can ever be pushed: no frame variables
    b.uses_desc = any(ins.op == "set_desc" for _, ins in b.code)
    b.sleepers = any(
        ins.op == "syscall" and SYSCALLS[ins.args[0]] != "fast" for _, ins in b.code
    )
    b.spawns = lifecycle.spawns(b)  # child thread -> (parent thread, clone/fork instruction)
    b.glibc_fail = glibc.may_fail(b)  # pthreads whose glibc registration a filter refuses
    b.execs = any(ins.op == "execve" for _, ins in b.code)
    b.areas = lifecycle.area_groups(b)  # rseq area name -> the threads that use it in turn
    if b.uses_cid:
        mmcid.check(b, cid_lines[0])
    b.area_vars = {}
    # a program branches on a syscall's result: model/retval.py
    b.uses_ret = any(ins.op in ("beq", "bne") and ins.args[0] == "ret" for _, ins in b.code)


def _globals(b: Builder) -> None:
    kill_names = ["NONE", "SIGSEGV"] + [s for s in sigmod.SIGNUM if s != "SIGSEGV"]
    b.killed = b.var("killed", Enum(*kill_names), 0)
    has_assert = any(ins.op == "assert" for _, ins in b.code)
    if has_assert:
        b.checked.add("assert")
    # no-unexpected-kill reads `killed` directly; the others have monitors.
    b.bad_names = ["NONE"] + [p for p in PROPERTIES if p in b.checked and p != "no-unexpected-kill"
                              and PROPERTIES[p].kind == "always"]
    b.bad = b.var("bad", Enum(*b.bad_names), 0)
    # the image was replaced by execve: handlers are SIG_DFL (flush_signal_handlers)
    b.exec_done = b.var("execve_done", Bool(), 0) if b.execs else None
    # force_fatal_sig(SIGSEGV) reset the SIGSEGV handler to SIG_DFL (model/rseq.py:catchable)
    segv = b.uses_rseq and b.sig_action("SIGSEGV") == "handler" and b.N > 0
    b.segv_dfl = b.var("SIGSEGV.dfl", Bool(), 0) if segv else None
    # descriptors whose memory a dlclose can unmap (process-wide)
    b.unmapped = {}
    for _, ins in b.code:
        if ins.op == "dlclose" and ins.args[0] not in b.unmapped:
            if ins.args[0] not in b.spec.cs:
                raise SpecError(b.spec.path, ins.line, f"dlclose {ins.args[0]}: no [rseq_cs.{ins.args[0]}] in the spec")
            b.unmapped[ins.args[0]] = b.var(f"{ins.args[0]}.unmapped", Bool(), 0)
    _user_vars(b)
    # which thread each CPU runs (model/cpus.py)
    b.curr = cpus.make_curr(b) if b.cpu_data and len(b.spec.threads) > 1 else {}


def _user_vars(b: Builder) -> None:
    """User variables of store/add/beq/bne/assert.  A declared range
    ([variables]) wins; otherwise one range holds every constant the
    programs use.  Names `tls.X` are per thread (created in _thread)."""
    names: set[str] = set()
    consts: set[int] = {0}
    added: dict[str, int] = {}
    for _, ins in b.code:
        if ins.op in ("store", "add", "beq", "bne") and ins.args and ins.args[0] in b.spec.arrays:
            # an array named without a slot reads as an undeclared variable: say what it is
            a = ins.args[0]
            raise SpecError(b.spec.path, ins.line, f"{a} is a per-CPU array: index it, e.g. {a}[%r0]")
        if data.is_data(ins):
            # a variable a data instruction names must be declared
            for a in data.operands(ins):
                if (not isinstance(a, str) or is_reg(a) or "[" in a or a.startswith("rseq.") or a in SPECIAL_VARS
                        or a in b.spec.arrays):
                    continue
                if a not in b.spec.variables:
                    raise SpecError(b.spec.path, ins.line, f"{a}: declare its range in [variables], e.g. \"{a}\" = [0, 3]")
                names.add(a)
        elif ins.op == "store":
            names.add(ins.args[0])
            consts.add(ins.args[1])
        elif ins.op == "add":
            names.add(ins.args[0])
            added.setdefault(ins.args[0], ins.line)
        elif ins.op in ("beq", "bne") and ins.args[0] not in SPECIAL_VARS:
            names.add(ins.args[0])
            if isinstance(ins.args[1], int):
                consts.add(ins.args[1])
        elif ins.op == "assert":
            names |= {n for n in expr_vars(ins.expr) if not (is_reg(n) or "[" in n or n.startswith("rseq."))}
            consts |= expr_ints(ins.expr)
    for up in b.spec.user_props.values():  # always/eventually/sometimes EXPR (model/progress.py)
        names |= {n for n in expr_vars(up.expr) if not (is_reg(n) or "[" in n or n.startswith(("rseq.", "tls.")))}
        consts |= expr_ints(up.expr)
    taken = {v.name for v in b.vars}  # killed, bad, execve_done, ...: the builder's own
    for n in sorted((names | set(b.spec.variables)) & taken):
        line = b.spec.lines.get(("variables", n)) or next(
            (ins.line for _, ins in b.code if n in [a for a in ins.args if isinstance(a, str)]), None)
        raise SpecError(b.spec.path, line, f"{n!r} is the name of a model variable; rename the user variable")
    for n, line in added.items():
        if n not in b.spec.variables:
            raise SpecError(b.spec.path, line, f"{n} is changed by add: declare its range in [variables], e.g. \"{n}\" = [0, 3]")
    lo, hi = min(consts), max(consts)
    b.uvar_range = {n: b.spec.variables.get(n, (lo, hi)) for n in sorted(names)}
    b.uvars = {n: b.var(n, IntRange(*r), 0) for n, r in b.uvar_range.items() if not n.startswith("tls.")}
    # per-CPU arrays: one global per slot
    b.slots = {
        a: [b.var(f"{a}[{c}]", IntRange(*r), 0) for c in range(b.env.cpus)] for a, r in sorted(b.spec.arrays.items())}
    b.data_range = data.hull(b)
    # R1/R2 compare the id fields with the last values written before a
    # rewrite, fatal on a mismatch: with the debug key, and in R2 for V2
    # registrations (rseq_len > 32)
    v2 = any(ins.op == "rseq_register" and ins.args[1] > 32 for _, ins in b.code)
    b.ro_check = b.rules["rseq.impl"] != "legacy" and (
        b.rules["rseq.debug"] == "on" or (b.rules["rseq.impl"] == "r2" and v2))
    b.reg_names = data.registers(b.code)
    # rseq registration is dynamic when a program calls rseq() or glibc did not register
    b.reg_values = ["none", "tls/32/RSEQ_SIG"]
    for _, ins in b.code:
        if ins.op in ("rseq_register", "rseq_unregister"):
            v = "/".join(str(a) for a in ins.args)
            if v not in b.reg_values:
                b.reg_values.append(v)
    b.dynamic_reg = len(b.reg_values) > 2 or any(
        ins.op in ("rseq_register", "rseq_unregister") for _, ins in b.code) or not b.env.glibc_rseq or any(
        ins.op == "clone" and "raw" in ins.args for _, ins in b.code) or bool(  # a raw clone child is unregistered
        b.glibc_fail)  # so may be a pthread whose registration fails


def _thread(b: Builder, t) -> TV:
    n = t.name
    N = b.N
    seg = t.segment
    ipt = b.ip_type
    spawned = n in b.spawns
    tv = TV(n, t.rseq_flags, b.var(f"{n}.k", Enum(*PHASES), PHASES.index("NEW") if spawned else 0, n), [],
            ptrace_step=t.ptrace_step, ptrace_syscall=t.ptrace_syscall, seccomp=dict(t.seccomp), spawned=spawned)
    tv.ip = [b.var(f"{n}.ip{d}", ipt, seg.base if d == 0 else 0, n) for d in range(N + 1)]
    if N > 0:
        tv.depth = b.var(f"{n}.depth", IntRange(0, N), 0, n)
    tv.ax = b.var(f"{n}.ax", Enum(*AX), 0, n)
    for name, r in b.uvar_range.items():
        if name.startswith("tls."):
            tv.tls[name] = b.var(f"{n}.{name}", IntRange(*r), 0, n)
    _data_vars(b, t, tv)
    if b.user_tf:
        tv.tf = b.var(f"{n}.tf", Bool(), 0, n)
        for d in range(1, N + 1):
            tv.ftf[d] = b.var(f"{n}.f{d}.tf", Bool(), 0, n)
    if b.stepping and "single-step-precise" in b.checked:
        tv.unrep = b.var(f"{n}.unreported", Bool(), 0, n)
    if (b.stepping or b.syscall_tracing) and b.sud_regions:
        tv.on_dispatch = b.var(f"{n}.on_dispatch", Bool(), 0, n)
    if n in b.glibc_fail:
        tv.glibc_init = b.var(f"{n}.glibc_start", Bool(), 0, n)
    if b.uses_ret:
        tv.ret = b.var(f"{n}.ret", Enum(*RET_VALUES), 0, n)
        for d in range(1, N + 1):
            tv.fret[d] = b.var(f"{n}.f{d}.ret", Enum(*RET_VALUES), 0, n)
    if b.dynamic_reg:
        tv.reg = b.var(f"{n}.rseq", Enum(*b.reg_values), 1 if b.env.glibc_rseq else 0, n)
        tv.rseq_ret = b.var(f"{n}.rseq_ret", Enum(*RSEQ_ERRORS), 0, n)
    if b.sud_regions or any(ins.op == "sud_select" for _, ins in b.code):
        names = ["OFF"] + [("intercept " if inc else "") + f"[{b.ip_label(lo)},"
                           f"{b.ip_label(hi) if hi < len(b.code) else '(end)'})"
                           + ("" if sel else " no selector") for lo, hi, sel, inc in b.sud_regions]
        tv.sud = b.var(f"{n}.sud", Enum(*names), 0, n)
        selects = {ins.args[0] for _, ins in b.code if ins.op == "sud_select"}
        values = ["ALLOW", "BLOCK"] + sorted(
            {v for v in selects if v.isdigit()} - {"0", "1"}, key=int) + sorted(selects & {"unmapped"})
        tv.selector = b.var(f"{n}.selector", Enum(*values), 0, n)
    for s in b.sigs:
        tv.pend[s] = b.var(f"{n}.pend.{s}", Bool(), 0, n)
    for s in b.sigs:
        tv.blk[s] = b.var(f"{n}.blk.{s}", Bool(), 0, n)
    for d in range(1, N + 1):
        tv.fblk[d] = {s: b.var(f"{n}.f{d}.blk.{s}", Bool(), 0, n) for s in b.sigs}
    if b.env_sigs and b.env.max_signals > 0:
        tv.budget = b.var(f"{n}.budget", IntRange(0, b.env.max_signals), b.env.max_signals, n)
    if b.env.preemption:
        tv.resched = b.var(f"{n}.resched", Bool(), 0, n)
    if b.env.max_notify_signals > 0:
        k = b.env.max_notify_signals
        tv.nbudget = b.var(f"{n}.tw_budget", IntRange(0, k), k, n)
        if b.rules["task_work.twa_signal"] == "yes":
            tv.nsig = b.var(f"{n}.notify_signal", Bool(), 0, n)
    handled = [s for s in b.sigs if b.sig_action(s) == "handler"]
    if handled and N > 0:
        tv.ksig = b.var(f"{n}.ksig", Enum("NONE", *handled), 0, n)
    if b.uses_rseq:
        tv.rseq_cs = b.area_var(tv, t, "rseq_cs", Enum("0", *[f"{c.name}@{c.seg.name}" if b._dup(c) else c.name for c in b.cs]), 0)
        tv.notify = b.var(f"{n}.notify", Bool(), 0, n)
        if b.rules["rseq.impl"] == "legacy":
            # every schedule-out sets it (rseq_preempt); a bit that stays 0 costs no states
            tv.ev["PREEMPT"] = b.var(f"{n}.ev.PREEMPT", Bool(), 0, n)
            if handled:
                tv.ev["SIGNAL"] = b.var(f"{n}.ev.SIGNAL", Bool(), 0, n)
            if b.migrates:
                tv.ev["MIGRATE"] = b.var(f"{n}.ev.MIGRATE", Bool(), 0, n)
        else:
            # R1/R2: t->rseq.event.user_irq and the raised work (sched_switch + TIF_RSEQ)
            tv.user_irq = b.var(f"{n}.user_irq", Bool(), 0, n)
            tv.raised = b.var(f"{n}.rseq_work", Bool(), 0, n)
    elif b.env.notify_resume or (tv.nbudget is not None and tv.nsig is None):
        tv.notify = b.var(f"{n}.notify", Bool(), 0, n)
    if b.uses_desc:
        names = sorted({ins.args[0] for _, ins in b.code if ins.op == "set_desc" and ins.args[0] != "0"})
        tv.desc = b.var(f"{n}.desc", Enum("0", *names), 0, n)
        tv.owner = b.var(f"{n}.desc_owner", IntRange(0, N), 0, n)
        if N > 0:
            tv.orphan = b.var(f"{n}.desc_orphan", Bool(), 0, n)
        tv.traced = b.var(f"{n}.traced", Bool(), 0, n)
        if b.rules["next_syscall.on_signal"] == "save-restore":
            for d in range(1, N + 1):
                tv.fdesc[d] = (
                    b.var(f"{n}.f{d}.desc", Enum("0", *names), 0, n),
                    b.var(f"{n}.f{d}.desc_owner", IntRange(0, N), 0, n),
                    b.var(f"{n}.f{d}.desc_orphan", Bool(), 0, n),
                )
    if "rseq-cs-atomic" in b.checked and b.uses_rseq:
        for d in range(N + 1):
            tv.dirty[d] = b.var(f"{n}.dirty{d}", Bool(), 0, n)
    return tv


def _data_vars(b: Builder, t, tv: TV) -> None:
    """Registers, the frames' copies of the ones a handler writes, the
    rseq area's fields and the CPU (model/data.py, model/cpus.py)."""
    n = t.name
    tv.cpu0 = t.cpu or 0
    hull = IntRange(*b.data_range)
    for r in b.reg_names:
        tv.regs[r] = b.var(f"{n}.{r}", hull, 0, n)
    saved = sorted(data.written_registers(b.handler_seg.values()) & set(b.reg_names), key=lambda r: int(r[2:]))
    for d in range(1, b.N + 1):
        tv.fregs[d] = {r: b.var(f"{n}.f{d}.{r}", hull, 0, n) for r in saved}
    if b.uses_fields:
        # glibc registered before the first instruction, and the kernel
        # wrote the ids on the way out; without it glibc marks the area
        # RSEQ_CPU_ID_REGISTRATION_FAILED (sysdeps/unix/sysv/linux/rseq-internal.h)
        start = tv.cpu0 if b.env.glibc_rseq else data.REGISTRATION_FAILED
        tv.rs["cpu_id_start"] = b.area_var(tv, t, "rseq.cpu_id_start", hull, tv.cpu0 if b.env.glibc_rseq else 0)
        tv.rs["cpu_id"] = b.area_var(tv, t, "rseq.cpu_id", hull, start)
        if b.uses_cid:
            c0 = mmcid.initial(b, t)
            tv.cid = b.var(f"{n}.mm_cid", IntRange(-1, mmcid.limit(b) - 1), c0, n)
            tv.cid_field = b.area_var(tv, t, "rseq.mm_cid", hull, max(c0, 0) if b.env.glibc_rseq else 0)
        if b.rules["rseq.impl"] != "legacy":
            tv.ids_changed = b.var(f"{n}.ids_changed", Bool(), 0, n)
            if b.ro_check:
                # the last ids written, which the read-only check compares with
                tv.ids_cpu = b.var(f"{n}.rseq_ids", IntRange(-1, b.env.cpus - 1),
                                   tv.cpu0 if b.env.glibc_rseq else -1, n)
    if b.cpu_data and (b.migrates or b.affinity):
        tv.cpu = b.var(f"{n}.cpu", IntRange(0, b.env.cpus - 1), tv.cpu0, n)
    if b.affinity and b.migrates:
        # the affinity mask, when migrations must respect it: -1 all CPUs
        tv.aff = b.var(f"{n}.affinity", IntRange(-1, b.env.cpus - 1), -1, n)


def build_system(spec: Spec) -> System:
    """The IR of `spec`: its variables, every mechanism's actions, the
    properties and progress goals, and the thread symmetries."""
    b = make_builder(spec)
    for t in b.threads:
        user.add_actions(b, t)
        entry.add_actions(b, t)
        delivery.add_actions(b, t)
        environment.add_actions(b, t)
        cpus.add_actions(b, t)
        glibc.add_actions(b, t)
    props = []
    for name in b.bad_names[1:]:
        info = PROPERTIES[name]
        props.append(Property(name, Ne(b.bad, b.bad_names.index(name)), info.doc, info.trigger))
    if "no-unexpected-kill" in b.checked:
        props.append(Property("no-unexpected-kill", Eq(b.killed, 0), PROPERTIES["no-unexpected-kill"].doc))
    goals, invariants = progress.goals(b)
    props += invariants
    system = System(
        vars=b.vars,
        init=b.init,
        actions=b.actions,
        properties=props,
        terminal=Or(Ne(b.killed, 0), Ne(b.bad, 0)),
        meta={"spec": spec, "builder": b},
        goals=goals,
        fairness=progress.fairness(b) if goals else [],
    )
    system.validate()
    system.symmetries = thread_symmetries(system)
    system.symmetry_group = thread_group(system)
    return system
