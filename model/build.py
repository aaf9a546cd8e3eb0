"""Build the IR `System` of a spec: declare the variables a spec needs and let
each mechanism module add its actions.

Per thread T the state is (kernel-semantics.md section 1):
  T.k          where the thread is: user mode or a kernel step (PHASES)
  T.depth      number of signal frames on the stack (context 0 = the thread)
  T.ip<d>      ip of context d; the live one is ip<depth>, lower ones are the
               ips saved in the frames above them (uc_mcontext.ip)
  T.ax         the saved ax as far as restart logic cares (syscalls.AX)
  T.pend.S / T.blk.S / T.f<d>.blk.S   pending, blocked, and frame-saved mask
  T.budget     signals the environment may still send to T
  T.resched    TIF_NEED_RESCHED;  T.notify  TIF_NOTIFY_RESUME
  T.ksig       the signal being delivered between delivery steps
  T.rseq_cs    the TLS rseq_cs pointer (0 or a descriptor instance)
  T.ev.*       t->rseq_event_mask bits (legacy rseq)
  T.desc ...   the next-syscall descriptor of seed 000, and its monitors
Variables a spec cannot use are not created, so they cost no states.
A kill (SIGSEGV, a default action) sets the global `killed`; the process has
no successor after it.  A property violation sets the global `bad`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from model import signals as sigmod
from model.errors import SpecError
from model.ir import (
    FALSE,
    Action,
    And,
    Bool,
    Const,
    Enum,
    Eq,
    Expr,
    ExprLike,
    IntRange,
    Ne,
    Not,
    Or,
    Property,
    System,
    Var,
    lift,
)
from model.program import RET_VALUES, RSEQ_ERRORS, Instr, Segment, expr_ints, expr_vars, is_reg
from model.properties import PROPERTIES
from model.rules import resolve
from model.spec import CsDesc, Spec
from model.syscalls import AX, SYSCALLS

# Names a program can test with beq/bne that are not user memory.
SPECIAL_VARS = ("rseq_ret", "rseq_size", "ret")

PHASES = (
    "USER",  # running user code at ip<depth>
    "ENTRY",  # syscall entry work (syscall_enter_from_user_mode)
    "BODY",  # the syscall body runs
    "BLOCKED",  # asleep inside the body
    "EXITWORK",  # syscall exit work (syscall_exit_to_user_mode_work)
    "LOOP",  # exit_to_user_mode_loop
    "SIGRSEQ",  # handle_signal: rseq_signal_deliver (first step of setup_rt_frame)
    "SIGFRAME",  # setup_rt_frame + signal_delivered
    "DEAD",  # the thread has exited
    "NEW",  # not created yet: a later clone/fork starts it (model/lifecycle.py)
)


def P(name: str) -> Const:
    """The value of kernel phase `name` (PHASES)."""
    return Const(PHASES.index(name))


def A(name: str) -> Const:
    """The value of `ax` `name` (syscalls.AX)."""
    return Const(AX.index(name))


@dataclass
class CsInst:
    """A descriptor at fixed addresses: one per code block holding its labels."""

    id: int  # value of T.rseq_cs (1-based)
    desc: CsDesc
    seg: Segment
    start: int  # global instruction indices
    post: int
    abort: int
    valid: bool  # passes rseq_get_rseq_cs's checks (legacy kernels)

    @property
    def name(self) -> str:
        return self.desc.name


@dataclass
class TV:
    """The variables of one thread."""

    name: str
    spec_flags: tuple[str, ...]
    k: Var
    ip: list[Var]
    depth: Var | None = None
    ax: Var | None = None
    pend: dict[str, Var] = field(default_factory=dict)
    blk: dict[str, Var] = field(default_factory=dict)
    fblk: dict[int, dict[str, Var]] = field(default_factory=dict)
    budget: Var | None = None
    resched: Var | None = None
    notify: Var | None = None
    nsig: Var | None = None  # TIF_NOTIFY_SIGNAL (task_work_add(TWA_SIGNAL))
    nbudget: Var | None = None  # task_work notifications the environment may still send
    ksig: Var | None = None
    rseq_cs: Var | None = None
    sud: Var | None = None
    selector: Var | None = None
    reg: Var | None = None  # t->rseq, t->rseq_len, t->rseq_sig (when a program can change them)
    rseq_ret: Var | None = None  # return value of the last rseq() call
    glibc_init: Var | None = None  # a pthread still in glibc's start_thread, about to register rseq (model/glibc.py)
    ret: Var | None = None  # the running context's last syscall result (%rax), when a program reads `ret`
    fret: dict[int, Var] = field(default_factory=dict)  # `ret` saved in frame d (uc_mcontext.ax)
    tls: dict[str, Var] = field(default_factory=dict)
    ptrace_step: bool = False  # a tracer single-steps every instruction of this thread
    ptrace_syscall: bool = False  # a tracer stops it at syscall entry and exit (PTRACE_SYSCALL)
    seccomp: dict[str, str] = field(default_factory=dict)  # syscall name -> filter action
    tf: Var | None = None  # TF in the user flags of the running context
    ftf: dict[int, Var] = field(default_factory=dict)  # TF saved in frame d
    unrep: Var | None = None  # single-step-precise monitor: a stepped instruction awaits its report
    on_dispatch: Var | None = None  # syscall_dispatch.on_dispatch (SUD with stepping only)
    user_irq: Var | None = None  # R1/R2: entered the kernel by an interrupt/exception from user mode
    raised: Var | None = None  # R1/R2: rseq work raised (event.sched_switch, TIF_RSEQ)
    ev: dict[str, Var] = field(default_factory=dict)
    desc: Var | None = None
    owner: Var | None = None
    orphan: Var | None = None
    traced: Var | None = None
    fdesc: dict[int, tuple[Var, Var, Var]] = field(default_factory=dict)
    dirty: dict[int, Var] = field(default_factory=dict)
    spawned: bool = False  # created by a clone/fork instruction, NEW until then
    # the data machine (model/data.py, model/cpus.py)
    regs: dict[str, Var] = field(default_factory=dict)  # %r0..%r15
    fregs: dict[int, dict[str, Var]] = field(default_factory=dict)  # registers saved in frame d
    rs: dict[str, Var] = field(default_factory=dict)  # fields of the rseq area: cpu_id_start, cpu_id
    ids_changed: Var | None = None  # R1/R2 t->rseq.event.ids_changed
    ids_cpu: Var | None = None  # R1/R2 t->rseq.ids.cpu_id, for the read-only check (debug, V2)
    aff: Var | None = None  # the CPU sched_setaffinity allows, -1 all (with migration)
    cid: Var | None = None  # the mm_cid it got at its last switch-in (model/mmcid.py)
    cid_field: Var | None = None  # the area's rseq.mm_cid
    cpu: Var | None = None  # the CPU it is on, when migration can change it
    cpu0: int = 0  # the CPU it starts on
    area_shared: set[Var] = field(default_factory=set)  # fields of an area other threads use in turn

    def at(self, phase: str) -> Expr:
        return Eq(self.k, PHASES.index(phase))

    def at_depth(self, d: int) -> Expr:
        return Eq(self.depth, d) if self.depth is not None else lift(d == 0)

    def thread_vars(self) -> list[Var]:
        out: list[Var] = [*self.ip]
        for v in (self.depth, self.ax, self.budget, self.resched, self.notify, self.ksig, self.rseq_cs, self.sud,
                  self.selector, self.reg, self.rseq_ret, self.ret, self.glibc_init, self.tf, self.unrep,
                  self.on_dispatch, self.user_irq, self.raised, self.nsig, self.nbudget):
            if v is not None:
                out.append(v)
        out += list(self.tls.values()) + list(self.ftf.values()) + list(self.fret.values())
        out += list(self.regs.values()) + [v for m in self.fregs.values() for v in m.values()] + list(self.rs.values())
        out += [v for v in (self.ids_changed, self.ids_cpu, self.cpu, self.aff, self.cid, self.cid_field) if v is not None]
        out += list(self.pend.values()) + list(self.blk.values())
        for m in self.fblk.values():
            out += list(m.values())
        out += list(self.ev.values())
        for v in (self.desc, self.owner, self.orphan, self.traced):
            if v is not None:
                out.append(v)
        for tr in self.fdesc.values():
            out += list(tr)
        out += list(self.dirty.values())
        return out


@dataclass
class Case:
    """One outcome of a kernel step: extra guard, assignments, and what the
    trace says about it."""

    guard: Expr
    updates: dict[Var, Expr]
    label: str
    fn: str = ""
    rule: str = ""
    tags: frozenset[str] = frozenset()

    def when(self, cond: Expr) -> Case:
        """The same outcome, only where `cond` also holds."""
        return replace(self, guard=And(cond, self.guard))


class Builder:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.rules = resolve(spec.preset, spec.rules)
        self.env = spec.env
        self.N = spec.env.max_nesting  # reduced to 0 in _layout when no handler can run
        self.vars: list[Var] = []
        self.init: dict[Var, int] = {}
        self.actions: list[Action] = []
        self.checked = set(spec.properties)
        self._layout()
        self._globals()
        self.threads = [self._thread(t) for t in spec.threads]

    # ------------------------------------------------------------ layout

    def _layout(self) -> None:
        spec = self.spec
        self.segments: list[Segment] = [t.segment for t in spec.threads]
        self.handler_seg: dict[str, Segment] = {}
        for sig, h in spec.handlers.items():
            if h.segment is not None:
                self.segments.append(h.segment)
                self.handler_seg[sig] = h.segment
        self.code: list[tuple[Segment, Instr]] = []
        for seg in self.segments:
            seg.base = len(self.code)
            self.code += [(seg, ins) for ins in seg.instrs]
        # Descriptor instances.
        self.cs: list[CsInst] = []
        self.cs_by_home: dict[tuple[str, str], CsInst] = {}
        self._armable: dict[str, list[CsInst]] = {}  # thread -> armable(t)
        for c in spec.cs.values():
            for seg in self.segments:
                if all(lab in seg.labels for lab in (c.start, c.post_commit, c.abort)):
                    st = seg.base + seg.labels[c.start]
                    po = seg.base + seg.labels[c.post_commit]
                    ab = seg.base + seg.labels[c.abort]
                    # the signature is checked against the registration (model/rseq.py)
                    valid = c.version == 0 and not (st <= ab < po)
                    inst = CsInst(len(self.cs) + 1, c, seg, st, po, ab, valid)
                    self.cs.append(inst)
                    self.cs_by_home[(c.name, seg.name)] = inst
        # CPU data: per-CPU arrays, the rseq area's fields, placed threads
        from model import data

        self.uses_fields = data.uses_fields(self.code) or "rseq-cpu-id-accurate" in self.checked
        cid_lines = [ins.line for _, ins in self.code if "rseq.mm_cid" in data.operands(ins)
                     or (ins.op == "assert" and "rseq.mm_cid" in data._expr_names(ins))]
        self.uses_cid = bool(cid_lines)
        self.affinity = any(ins.op == "sched_setaffinity" for _, ins in self.code)
        self.cpu_data = (self.uses_fields or bool(spec.arrays) or any(t.cpu is not None for t in spec.threads)
                         or self.affinity or any(ins.op == "getcpu" for _, ins in self.code))
        for _, ins in self.code:
            if ins.op == "sched_setaffinity" and ins.args[0] >= spec.env.cpus:
                raise SpecError(spec.path, ins.line, f"sched_setaffinity {ins.args[0]}: cpus = {spec.env.cpus}")
        # (a registration of an unmapped area makes every rseq fixup fault)
        self.uses_rseq = self.uses_fields or any(
            ins.op == "rseq_cs" or (ins.op == "rseq_register" and ins.args[0] == "unmapped") for _, ins in self.code)
        self.sud_regions = self._sud_regions()
        # Signals the environment can send; the ignored ones are dropped at
        # generation (kernel/signal.c:sig_ignored).  Kernel-generated ones
        # (SIGSYS from SUD) join them; `sigs` is in dequeue order.
        self.env_sigs: list[str] = [s for s in self.env.signals if self.sig_action(s) != "ignore"]
        self.user_tf = any(ins.op in ("set_tf", "clear_tf") for _, ins in self.code)
        self.stepping = self.user_tf or any(t.ptrace_step for t in spec.threads)
        self.syscall_tracing = any(t.ptrace_syscall for t in spec.threads)
        seccomp_trap = any("trap" in t.seccomp.values() for t in spec.threads)
        kernel_sigs = {"SIGSYS"} if self.sud_regions or seccomp_trap else set()
        if self.stepping:
            kernel_sigs.add("SIGTRAP")  # exc_debug_user / user_single_step_report
        kernel_sigs |= {ins.args[0] for _, ins in self.code if ins.op == "fault"}
        if self.sig_action("SIGSEGV") == "handler" and any("[%r" in a for _, ins in self.code for a in data.operands(ins)):
            kernel_sigs.add("SIGSEGV")  # an array index out of bounds faults: a catchable SIGSEGV (model/user.py)
        if self.stepping and any(ins.op == "fault" for _, ins in self.code):
            raise SpecError(self.spec.path, next(ins.line for _, ins in self.code if ins.op == "fault"),
                            "fault with single-stepping is not modelled")
        if self.uses_rseq and self.sig_action("SIGSEGV") == "handler":
            kernel_sigs.add("SIGSEGV")  # an rseq failure's force_sig is catchable (model/rseq.py:catchable)
        self.sigs: list[str] = sigmod.dequeue_order(sorted(set(self.env_sigs) | kernel_sigs))
        if not any(self.sig_action(s) == "handler" for s in self.sigs):
            self.N = 0  # no frame can ever be pushed: no frame variables
        self.uses_desc = any(ins.op == "set_desc" for _, ins in self.code)
        self.sleepers = any(
            ins.op == "syscall" and SYSCALLS[ins.args[0]] != "fast" for _, ins in self.code
        )
        from model import lifecycle

        self.spawns = lifecycle.spawns(self)  # child thread -> (parent thread, clone/fork instruction)
        from model import glibc

        self.glibc_fail = glibc.may_fail(self)  # pthreads whose glibc registration a filter refuses
        self.execs = any(ins.op == "execve" for _, ins in self.code)
        self.areas = lifecycle.area_groups(self)  # rseq area name -> the threads that use it in turn
        if self.uses_cid:
            from model import mmcid

            mmcid.check(self, cid_lines[0])
        self.area_vars: dict[str, Var] = {}
        # a program branches on a syscall's result: model/retval.py
        self.uses_ret = any(ins.op in ("beq", "bne") and ins.args[0] == "ret" for _, ins in self.code)

    def _sud_regions(self) -> list[tuple[int, int, bool, bool]]:
        """(start, end, has_selector, inclusive) of every sud_on, in order;
        the region is [start, end) in instruction addresses, allowed
        (exclusive mode) or intercepted (inclusive mode)."""
        out: list[tuple[int, int, bool, bool]] = []
        for seg, ins in self.code:
            if ins.op != "sud_on":
                continue
            lo = self.label_addr(ins.args[0], seg, ins.line)
            hi = self.label_addr(ins.args[1], seg, ins.line)
            if hi < lo:
                raise SpecError(self.spec.path, ins.line, "sud_on: END comes before START")
            r = (lo, hi, "noselector" not in ins.args, "inclusive" in ins.args)
            if r not in out:
                out.append(r)
        return out

    def label_addr(self, label: str, seg: Segment, line: int) -> int:
        if label in seg.labels:
            return seg.base + seg.labels[label]
        homes = [s for s in self.segments if label in s.labels]
        if len(homes) != 1:
            what = "unknown label" if not homes else "ambiguous label (defined in several code blocks)"
            raise SpecError(self.spec.path, line, f"{what} {label!r}")
        return homes[0].base + homes[0].labels[label]

    def sig_action(self, s: str) -> str:
        """'handler', 'ignore', 'stop' or 'kill' (kernel/signal.c:get_signal)."""
        h = self.spec.handlers.get(s)
        if h is not None and h.action == "handler":
            return "handler"
        if h is not None and h.action == "ignore":
            return "ignore" if s not in ("SIGSTOP",) else "stop"
        if s in sigmod.DEFAULT_IGNORE:
            return "ignore"
        if s in sigmod.DEFAULT_STOP:
            return "stop"
        return "kill"

    def instance_for(self, name: str, seg: Segment, line: int) -> CsInst:
        inst = self.cs_by_home.get((name, seg.name))
        if inst is not None:
            return inst
        homes = [c for c in self.cs if c.name == name]
        if len(homes) == 1:
            return homes[0]
        raise SpecError(self.spec.path, line, f"rseq_cs {name}: its labels are in several code blocks; arm it from one of them")

    # ------------------------------------------------------------ variables

    def var(self, name: str, typ, init: int, proc: str | None = None) -> Var:
        v = Var(name, typ, proc)
        self.vars.append(v)
        self.init[v] = init
        return v

    def _globals(self) -> None:
        kill_names = ["NONE", "SIGSEGV"] + [s for s in sigmod.SIGNUM if s != "SIGSEGV"]
        self.killed = self.var("killed", Enum(*kill_names), 0)
        has_assert = any(ins.op == "assert" for _, ins in self.code)
        if has_assert:
            self.checked.add("assert")
        # no-unexpected-kill reads `killed` directly; the others have monitors.
        self.bad_names = ["NONE"] + [p for p in PROPERTIES if p in self.checked and p != "no-unexpected-kill"
                                     and PROPERTIES[p].kind == "always"]
        self.bad = self.var("bad", Enum(*self.bad_names), 0)
        # the image was replaced by execve: handlers are SIG_DFL (flush_signal_handlers)
        self.exec_done = self.var("execve_done", Bool(), 0) if self.execs else None
        # force_fatal_sig(SIGSEGV) reset the SIGSEGV handler to SIG_DFL (model/rseq.py:catchable)
        segv = self.uses_rseq and self.sig_action("SIGSEGV") == "handler" and self.N > 0
        self.segv_dfl = self.var("SIGSEGV.dfl", Bool(), 0) if segv else None
        # descriptors whose memory a dlclose can unmap (process-wide)
        self.unmapped: dict[str, Var] = {}
        for _, ins in self.code:
            if ins.op == "dlclose" and ins.args[0] not in self.unmapped:
                if ins.args[0] not in self.spec.cs:
                    raise SpecError(self.spec.path, ins.line, f"dlclose {ins.args[0]}: no [rseq_cs.{ins.args[0]}] in the spec")
                self.unmapped[ins.args[0]] = self.var(f"{ins.args[0]}.unmapped", Bool(), 0)
        self._user_vars()
        from model import cpus

        # which thread each CPU runs (model/cpus.py)
        self.curr: dict[int, Var] = cpus.make_curr(self) if self.cpu_data and len(self.spec.threads) > 1 else {}

    def _user_vars(self) -> None:
        """User variables of store/add/beq/bne/assert.  A declared range
        ([variables]) wins; otherwise one range holds every constant the
        programs use.  Names `tls.X` are per thread (created in _thread)."""
        from model import data

        names: set[str] = set()
        consts: set[int] = {0}
        added: dict[str, int] = {}
        for _, ins in self.code:
            if data.is_data(ins):
                # a variable a data instruction names must be declared
                for a in data.operands(ins):
                    if (not isinstance(a, str) or is_reg(a) or "[" in a or a.startswith("rseq.") or a in SPECIAL_VARS
                            or a in self.spec.arrays):
                        continue
                    if a not in self.spec.variables:
                        raise SpecError(self.spec.path, ins.line, f"{a}: declare its range in [variables], e.g. \"{a}\" = [0, 3]")
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
        for up in self.spec.user_props.values():  # always/eventually/sometimes EXPR (model/progress.py)
            names |= {n for n in expr_vars(up.expr) if not (is_reg(n) or "[" in n or n.startswith(("rseq.", "tls.")))}
            consts |= expr_ints(up.expr)
        taken = {v.name for v in self.vars}  # killed, bad, execve_done, ...: the builder's own
        for n in sorted((names | set(self.spec.variables)) & taken):
            line = self.spec.lines.get(("variables", n)) or next(
                (ins.line for _, ins in self.code if n in [a for a in ins.args if isinstance(a, str)]), None)
            raise SpecError(self.spec.path, line, f"{n!r} is the name of a model variable; rename the user variable")
        for n, line in added.items():
            if n not in self.spec.variables:
                raise SpecError(self.spec.path, line, f"{n} is changed by add: declare its range in [variables], e.g. \"{n}\" = [0, 3]")
        lo, hi = min(consts), max(consts)
        self.uvar_range = {n: self.spec.variables.get(n, (lo, hi)) for n in sorted(names)}
        self.uvars = {n: self.var(n, IntRange(*r), 0) for n, r in self.uvar_range.items() if not n.startswith("tls.")}
        # per-CPU arrays: one global per slot
        self.slots: dict[str, list[Var]] = {
            a: [self.var(f"{a}[{c}]", IntRange(*r), 0) for c in range(self.env.cpus)] for a, r in sorted(self.spec.arrays.items())}
        self.data_range = data.hull(self)
        # R1/R2 compare the id fields with the last values written before a
        # rewrite, fatal on a mismatch: with the debug key, and in R2 for V2
        # registrations (rseq_len > 32)
        v2 = any(ins.op == "rseq_register" and ins.args[1] > 32 for _, ins in self.code)
        self.ro_check = self.rules["rseq.impl"] != "legacy" and (
            self.rules["rseq.debug"] == "on" or (self.rules["rseq.impl"] == "r2" and v2))
        self.reg_names = data.registers(self.code)
        # rseq registration is dynamic when a program calls rseq() or glibc did not register
        self.reg_values = ["none", "tls/32/RSEQ_SIG"]
        for _, ins in self.code:
            if ins.op in ("rseq_register", "rseq_unregister"):
                v = "/".join(str(a) for a in ins.args)
                if v not in self.reg_values:
                    self.reg_values.append(v)
        self.dynamic_reg = len(self.reg_values) > 2 or any(
            ins.op in ("rseq_register", "rseq_unregister") for _, ins in self.code) or not self.env.glibc_rseq or any(
            ins.op == "clone" and "raw" in ins.args for _, ins in self.code) or bool(  # a raw clone child is unregistered
            self.glibc_fail)  # so may be a pthread whose registration fails

    def uvar(self, t: TV, name: str) -> Var:
        return t.tls[name] if name.startswith("tls.") else self.uvars[name]

    @property
    def ip_type(self):
        """ips are shown by label: 'retry', 'T0+2', 'SIGUSR1+1'; one more
        value for the address after a block's final instruction."""
        names = [self.ip_label(i) for i in range(len(self.code))] + ["(end)"]
        return Enum(*names)

    def _thread(self, t) -> TV:
        n = t.name
        N = self.N
        seg = t.segment
        ipt = self.ip_type
        spawned = n in self.spawns
        tv = TV(n, t.rseq_flags, self.var(f"{n}.k", Enum(*PHASES), PHASES.index("NEW") if spawned else 0, n), [],
                ptrace_step=t.ptrace_step, ptrace_syscall=t.ptrace_syscall, seccomp=dict(t.seccomp), spawned=spawned)
        tv.ip = [self.var(f"{n}.ip{d}", ipt, seg.base if d == 0 else 0, n) for d in range(N + 1)]
        if N > 0:
            tv.depth = self.var(f"{n}.depth", IntRange(0, N), 0, n)
        tv.ax = self.var(f"{n}.ax", Enum(*AX), 0, n)
        for name, r in self.uvar_range.items():
            if name.startswith("tls."):
                tv.tls[name] = self.var(f"{n}.{name}", IntRange(*r), 0, n)
        self._data_vars(t, tv)
        if self.user_tf:
            tv.tf = self.var(f"{n}.tf", Bool(), 0, n)
            for d in range(1, N + 1):
                tv.ftf[d] = self.var(f"{n}.f{d}.tf", Bool(), 0, n)
        if self.stepping and "single-step-precise" in self.checked:
            tv.unrep = self.var(f"{n}.unreported", Bool(), 0, n)
        if (self.stepping or self.syscall_tracing) and self.sud_regions:
            tv.on_dispatch = self.var(f"{n}.on_dispatch", Bool(), 0, n)
        if n in self.glibc_fail:
            tv.glibc_init = self.var(f"{n}.glibc_start", Bool(), 0, n)
        if self.uses_ret:
            tv.ret = self.var(f"{n}.ret", Enum(*RET_VALUES), 0, n)
            for d in range(1, N + 1):
                tv.fret[d] = self.var(f"{n}.f{d}.ret", Enum(*RET_VALUES), 0, n)
        if self.dynamic_reg:
            tv.reg = self.var(f"{n}.rseq", Enum(*self.reg_values), 1 if self.env.glibc_rseq else 0, n)
            tv.rseq_ret = self.var(f"{n}.rseq_ret", Enum(*RSEQ_ERRORS), 0, n)
        if self.sud_regions or any(ins.op == "sud_select" for _, ins in self.code):
            names = ["OFF"] + [("intercept " if inc else "") + f"[{self.ip_label(lo)},"
                               f"{self.ip_label(hi) if hi < len(self.code) else '(end)'})"
                               + ("" if sel else " no selector") for lo, hi, sel, inc in self.sud_regions]
            tv.sud = self.var(f"{n}.sud", Enum(*names), 0, n)
            selects = {ins.args[0] for _, ins in self.code if ins.op == "sud_select"}
            values = ["ALLOW", "BLOCK"] + sorted(
                {v for v in selects if v.isdigit()} - {"0", "1"}, key=int) + sorted(selects & {"unmapped"})
            tv.selector = self.var(f"{n}.selector", Enum(*values), 0, n)
        for s in self.sigs:
            tv.pend[s] = self.var(f"{n}.pend.{s}", Bool(), 0, n)
        for s in self.sigs:
            tv.blk[s] = self.var(f"{n}.blk.{s}", Bool(), 0, n)
        for d in range(1, N + 1):
            tv.fblk[d] = {s: self.var(f"{n}.f{d}.blk.{s}", Bool(), 0, n) for s in self.sigs}
        if self.env_sigs and self.env.max_signals > 0:
            tv.budget = self.var(f"{n}.budget", IntRange(0, self.env.max_signals), self.env.max_signals, n)
        if self.env.preemption:
            tv.resched = self.var(f"{n}.resched", Bool(), 0, n)
        if self.env.max_notify_signals > 0:
            k = self.env.max_notify_signals
            tv.nbudget = self.var(f"{n}.tw_budget", IntRange(0, k), k, n)
            if self.rules["task_work.twa_signal"] == "yes":
                tv.nsig = self.var(f"{n}.notify_signal", Bool(), 0, n)
        handled = [s for s in self.sigs if self.sig_action(s) == "handler"]
        if handled and N > 0:
            tv.ksig = self.var(f"{n}.ksig", Enum("NONE", *handled), 0, n)
        if self.uses_rseq:
            tv.rseq_cs = self.area_var(tv, t, "rseq_cs", Enum("0", *[f"{c.name}@{c.seg.name}" if self._dup(c) else c.name for c in self.cs]), 0)
            tv.notify = self.var(f"{n}.notify", Bool(), 0, n)
            if self.rules["rseq.impl"] == "legacy":
                # every schedule-out sets it (rseq_preempt); a bit that stays 0 costs no states
                tv.ev["PREEMPT"] = self.var(f"{n}.ev.PREEMPT", Bool(), 0, n)
                if handled:
                    tv.ev["SIGNAL"] = self.var(f"{n}.ev.SIGNAL", Bool(), 0, n)
                if self.migrates:
                    tv.ev["MIGRATE"] = self.var(f"{n}.ev.MIGRATE", Bool(), 0, n)
            else:
                # R1/R2: t->rseq.event.user_irq and the raised work (sched_switch + TIF_RSEQ)
                tv.user_irq = self.var(f"{n}.user_irq", Bool(), 0, n)
                tv.raised = self.var(f"{n}.rseq_work", Bool(), 0, n)
        elif self.env.notify_resume or (tv.nbudget is not None and tv.nsig is None):
            tv.notify = self.var(f"{n}.notify", Bool(), 0, n)
        if self.uses_desc:
            names = sorted({ins.args[0] for _, ins in self.code if ins.op == "set_desc" and ins.args[0] != "0"})
            tv.desc = self.var(f"{n}.desc", Enum("0", *names), 0, n)
            tv.owner = self.var(f"{n}.desc_owner", IntRange(0, N), 0, n)
            if N > 0:
                tv.orphan = self.var(f"{n}.desc_orphan", Bool(), 0, n)
            tv.traced = self.var(f"{n}.traced", Bool(), 0, n)
            if self.rules["next_syscall.on_signal"] == "save-restore":
                for d in range(1, N + 1):
                    tv.fdesc[d] = (
                        self.var(f"{n}.f{d}.desc", Enum("0", *names), 0, n),
                        self.var(f"{n}.f{d}.desc_owner", IntRange(0, N), 0, n),
                        self.var(f"{n}.f{d}.desc_orphan", Bool(), 0, n),
                    )
        if "rseq-cs-atomic" in self.checked and self.uses_rseq:
            for d in range(N + 1):
                tv.dirty[d] = self.var(f"{n}.dirty{d}", Bool(), 0, n)
        return tv

    def _data_vars(self, t, tv: TV) -> None:
        """Registers, the frames' copies of the ones a handler writes, the
        rseq area's fields and the CPU (model/data.py, model/cpus.py)."""
        from model import data

        n = t.name
        tv.cpu0 = t.cpu or 0
        hull = IntRange(*self.data_range)
        for r in self.reg_names:
            tv.regs[r] = self.var(f"{n}.{r}", hull, 0, n)
        saved = sorted(data.written_registers(self.handler_seg.values()) & set(self.reg_names), key=lambda r: int(r[2:]))
        for d in range(1, self.N + 1):
            tv.fregs[d] = {r: self.var(f"{n}.f{d}.{r}", hull, 0, n) for r in saved}
        if self.uses_fields:
            # glibc registered before the first instruction, and the kernel
            # wrote the ids on the way out; without it glibc marks the area
            # RSEQ_CPU_ID_REGISTRATION_FAILED (sysdeps/unix/sysv/linux/rseq-internal.h)
            start = tv.cpu0 if self.env.glibc_rseq else data.REGISTRATION_FAILED
            tv.rs["cpu_id_start"] = self.area_var(tv, t, "rseq.cpu_id_start", hull, tv.cpu0 if self.env.glibc_rseq else 0)
            tv.rs["cpu_id"] = self.area_var(tv, t, "rseq.cpu_id", hull, start)
            if self.uses_cid:
                from model import mmcid

                c0 = mmcid.initial(self, t)
                tv.cid = self.var(f"{n}.mm_cid", IntRange(-1, mmcid.limit(self) - 1), c0, n)
                tv.cid_field = self.area_var(tv, t, "rseq.mm_cid", hull, max(c0, 0) if self.env.glibc_rseq else 0)
            if self.rules["rseq.impl"] != "legacy":
                tv.ids_changed = self.var(f"{n}.ids_changed", Bool(), 0, n)
                if self.ro_check:
                    # the last ids written, which the read-only check compares with
                    tv.ids_cpu = self.var(f"{n}.rseq_ids", IntRange(-1, self.env.cpus - 1),
                                          tv.cpu0 if self.env.glibc_rseq else -1, n)
        if self.cpu_data and (self.migrates or self.affinity):
            tv.cpu = self.var(f"{n}.cpu", IntRange(0, self.env.cpus - 1), tv.cpu0, n)
        if self.affinity and self.migrates:
            # the affinity mask, when migrations must respect it: -1 all CPUs
            tv.aff = self.var(f"{n}.affinity", IntRange(-1, self.env.cpus - 1), -1, n)

    def area_var(self, tv: TV, t, field: str, typ, init: int) -> Var:
        """A field of T's rseq area: T's own variable, or, when T shares its
        area with other threads in turn ([thread.T] rseq_area), the area's
        variable, created by the first of them and left as it is when a
        thread exits (model/lifecycle.py:area_groups)."""
        if t.area not in self.areas:
            return self.var(f"{tv.name}.{field}", typ, init, tv.name)
        key = f"{t.area}.{field}"
        if key not in self.area_vars:
            self.area_vars[key] = self.var(key, typ, init)
        tv.area_shared.add(self.area_vars[key])
        return self.area_vars[key]

    def spec_thread(self, t: TV):
        return next(x for x in self.spec.threads if x.name == t.name)

    def armable(self, t: TV) -> list[CsInst]:
        """The descriptor instances T.rseq_cs can ever hold, in `cs` order:
        what T's rseq fixup needs cases for (issue #15: T*K actions, not
        T*T*K).

        Why it is sound: T.rseq_cs is user memory (T's struct rseq) that
        the kernel only reads and zeroes (kernel/rseq.c: rseq_ip_fixup ->
        clear_rseq_cs; R1/R2 rseq_update_user_cs; sys_rseq at
        registration).  In the model it is written only by (a) an
        `rseq_cs NAME` instruction run by one of T's contexts, which
        stores instance_for(NAME, the instruction's block); (b) 0 (those
        kernel paths); (c) the parent's value, at fork (model/lifecycle.py
        body_cases); (d) another thread, when they share an rseq area in
        turn (area_var).  T's contexts run T's block and the handlers'
        blocks (jmp/beq/bne stay in their block: spec.py _check_code), and
        the block of any instance they arm, since a fixup aborting it moves
        the ip to its abort label: the closure below.  So without fork,
        clone, execve (a new image at any label), dlclose or shared areas,
        an instance outside the closure never is T.rseq_cs's value: a case
        guarded by T.rseq_cs == its id never fires, and dropping it (and
        its negation from the later cases' guards) keeps every reachable
        transition.  In particular an instance whose labels are in
        another thread's block, and which nothing T runs arms by name, is
        not in T's closure: T never stores its id (and T's ip, always in
        T's closure, is never in its range).  With (c) or (d), or a new
        image, every instance is kept."""
        got = self._armable.get(t.name)
        if got is not None:
            return got
        if (self.spawns or self.execs or self.areas
                or any(ins.op == "dlclose" for _, ins in self.code)):
            got = list(self.cs)
        else:
            segs = [self.spec_thread(t).segment, *self.handler_seg.values()]
            armed: set[int] = set()
            i = 0
            while i < len(segs):  # the blocks T can run, widened by each abort label
                seg = segs[i]
                i += 1
                for ins in seg.instrs:
                    if ins.op == "rseq_cs" and ins.args[0] != "0":
                        c = self.instance_for(ins.args[0], seg, ins.line)
                        armed.add(c.id)
                        if all(s is not c.seg for s in segs):
                            segs.append(c.seg)
            got = [c for c in self.cs if c.id in armed]
        self._armable[t.name] = got
        return got

    def _dup(self, c: CsInst) -> bool:
        return sum(1 for x in self.cs if x.name == c.name) > 1

    @property
    def migrates(self) -> bool:
        return self.env.migration and self.env.cpus > 1

    # ------------------------------------------------------------ helpers

    def alive(self, t: TV) -> Expr:
        dead = Ne(t.k, PHASES.index("DEAD"))
        return And(dead, Ne(t.k, PHASES.index("NEW"))) if t.spawned else dead

    def ip_label(self, ip: int) -> str:
        seg, ins = self.code[ip]
        local = ip - seg.base
        labs = [lab for lab, i in seg.labels.items() if i == local]
        short = seg.name.replace("handler ", "")
        if labs:
            many = sum(1 for s in self.segments if labs[0] in s.labels) > 1
            return f"{short}:{labs[0]}" if many else labs[0]
        return f"{short}+{local}"

    def deliverable(self, t: TV, s: str) -> Expr:
        """s is pending, unblocked, and (for a handler) a frame still fits
        under max_nesting: deeper nesting is outside the bound."""
        e = And(t.pend[s], Not(t.blk[s]))
        if t.glibc_init is not None:
            e = And(e, Not(t.glibc_init))  # start_thread runs with every signal blocked
        if self.sig_action(s) == "handler":
            if self.N == 0:
                return FALSE
            e = And(e, Ne(t.depth, self.N))
        return e

    def any_deliverable(self, t: TV) -> Expr:
        return Or(*[self.deliverable(t, s) for s in self.sigs])

    def sig_pending(self, t: TV) -> Expr:
        """signal_pending(): a deliverable signal or TIF_NOTIFY_SIGNAL
        (include/linux/sched/signal.h); what wakes an interruptible sleep."""
        return Or(self.any_deliverable(t), *([t.nsig] if t.nsig is not None else []))

    def thread_ends(self, t: TV) -> dict[Var, Expr]:
        """The thread is gone (kernel/exit.c:do_exit): DEAD, and its
        variables back to their initial values, which costs no states;
        an rseq area another thread may reuse keeps what it holds
        (do_exit does not unregister rseq or touch the area)."""
        from model import cpus

        return {**{v: Const(self.init[v]) for v in t.thread_vars() if v not in t.area_shared},
                t.k: Const(PHASES.index("DEAD")), **cpus.release(self, t)}

    def sig_dfl(self, s: str) -> Expr | None:
        """When the handler of s has been reset to SIG_DFL at run time (by
        execve, or for SIGSEGV by force_fatal_sig); None if it never is."""
        parts = [v for v in (self.exec_done, self.segv_dfl if s == "SIGSEGV" else None) if v is not None]
        return Or(*parts) if parts else None

    def kill(self, sig: str = "SIGSEGV") -> dict[Var, Expr]:
        return {self.killed: lift(self.killed.type.names.index(sig))}

    def flag_bad(self, prop: str) -> dict[Var, Expr]:
        return {self.bad: lift(self.bad_names.index(prop))}

    def add(
        self,
        t: TV,
        actor: str,
        guard: ExprLike,
        updates: dict[Var, ExprLike],
        label: str,
        fn: str = "",
        rule: str = "",
        tags: frozenset[str] | set[str] = frozenset(),
        proc: str | None = None,
        anywhere: bool = False,
    ) -> None:
        """A step of thread t; unless `anywhere` (a signal sent to it, say),
        only while its CPU runs it (model/cpus.py)."""
        ups = tuple((v, lift(e)) for v, e in updates.items())
        g = And(guard)
        if self.curr and not anywhere:
            from model import cpus

            g = And(g, cpus.oncpu(self, t))
        if isinstance(g, Const) and not g.value:
            return  # a case that can never happen (e.g. a check a registration makes moot)
        self.actions.append(
            Action(label, g, ups, proc or t.name, actor, fn, rule, frozenset(tags))
        )

    def add_cases(self, t: TV, actor: str, base: Expr, cases: list[Case], common: dict[Var, ExprLike]) -> None:
        """One action per case; cases are tried in order (a case's guard
        excludes the earlier ones), `common` applies unless a case overrides."""
        earlier: list[Expr] = []
        for c in cases:
            guard = And(base, c.guard, *[Not(g) for g in earlier])
            ups = dict(common)
            ups.update(c.updates)
            if self.killed in c.updates:  # a kill ends everything: keep the rest untouched
                ups = dict(c.updates)
            self.add(t, actor, guard, ups, c.label, c.fn, c.rule, c.tags)
            earlier.append(c.guard)

    def ctx_name(self, t: TV, d: int) -> str:
        return t.name if d == 0 else f"{t.name}.h{d}"

    def kernel_actor(self, t: TV) -> str:
        return f"{t.name}:kernel"


def build_system(spec: Spec) -> System:
    from model import cpus, delivery, entry, environment, glibc, user

    b = Builder(spec)
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
    from model import progress

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
    from model.symmetry import thread_group, thread_symmetries

    system.symmetries = thread_symmetries(system)
    system.symmetry_group = thread_group(system)
    return system
