"""The toolkit the mechanism modules share while they add their actions:
the state of a spec (Builder, TV, CsInst) and the guarded commands they
make of it (Case, Builder.add).  It imports only leaf modules, never a
mechanism; model/build.py assembles the mechanisms on top of it.

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

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rseqcheck.model import signals as sigmod
from rseqcheck.model import sources
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import (
    FALSE,
    Action,
    And,
    Const,
    Enum,
    Eq,
    Expr,
    ExprLike,
    Ne,
    Not,
    Or,
    Var,
    lift,
)
from rseqcheck.model.program import Instr, Segment
from rseqcheck.model.rules import resolve
from rseqcheck.model.spec import CsDesc, Spec
from rseqcheck.model.syscalls import AX

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
    """What the mechanism modules share while they add their actions: the
    spec's variables, and helpers to make guarded commands.  It places
    the code itself; the rest of the layout (the facts below) asks the
    mechanisms what the programs use, so the assembly sets it
    (model/build.py:make_builder)."""

    # set by the assembly's layout (model/build.py:_layout, _globals, _user_vars)
    uses_fields: bool  # the rseq area's fields are used (model/data.py)
    uses_cid: bool  # rseq.mm_cid is read (model/mmcid.py)
    affinity: bool  # a program calls sched_setaffinity
    cpu_data: bool  # CPU placement matters (model/cpus.py)
    uses_rseq: bool
    sud_regions: list[tuple[int, int, bool, bool]]
    env_sigs: list[str]
    user_tf: bool
    stepping: bool
    syscall_tracing: bool
    sigs: list[str]  # every signal that can be pending, in dequeue order
    uses_desc: bool
    sleepers: bool
    spawns: dict[str, tuple[str, Instr]]  # model/lifecycle.py:spawns
    glibc_fail: set[str]  # model/glibc.py:may_fail
    execs: bool
    areas: dict[str, list[str]]  # model/lifecycle.py:area_groups
    area_vars: dict[str, Var]
    uses_ret: bool
    killed: Var
    bad_names: list[str]
    bad: Var
    exec_done: Var | None
    segv_dfl: Var | None
    unmapped: dict[str, Var]
    uvar_range: dict[str, tuple[int, int]]
    uvars: dict[str, Var]
    slots: dict[str, list[Var]]
    data_range: tuple[int, int]  # model/data.py:hull
    ro_check: bool
    reg_names: list[str]  # model/data.py:registers
    reg_values: list[str]
    dynamic_reg: bool

    def __init__(self, spec: Spec):
        self.spec = spec
        self.rules = resolve(spec.preset, spec.rules)
        self.moved = sources.moves(spec.preset)  # citations as the preset's kernel has them
        self.env = spec.env
        self.N = spec.env.max_nesting  # reduced to 0 in _layout when no handler can run
        self.vars: list[Var] = []
        self.init: dict[Var, int] = {}
        self.actions: list[Action] = []
        self.checked = set(spec.properties)
        self._place_code()
        # set by the assembly (model/build.py): which thread each CPU runs
        # (model/cpus.py:make_curr) and the test that T is that thread
        # (model/cpus.py:oncpu), a hook so that this toolkit imports no
        # mechanism
        self.curr: dict[int, Var] = {}
        self.oncpu: Callable[[Builder, TV], Expr] | None = None
        self.threads: list[TV] = []

    # ------------------------------------------------------------ layout

    def _place_code(self) -> None:
        """Code blocks at their global addresses, and the descriptor
        instances whose labels they hold; the rest of the layout needs
        the mechanisms and is model/build.py's."""
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

    def find_sud_regions(self) -> list[tuple[int, int, bool, bool]]:
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

    def uvar(self, t: TV, name: str) -> Var:
        return t.tls[name] if name.startswith("tls.") else self.uvars[name]

    @property
    def ip_type(self):
        """ips are shown by label: 'retry', 'T0+2', 'SIGUSR1+1'; one more
        value for the address after a block's final instruction."""
        names = [self.ip_label(i) for i in range(len(self.code))] + ["(end)"]
        return Enum(*names)


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


    def on_cpu(self, t: TV) -> Expr:
        """T is the thread its CPU runs (model/cpus.py:oncpu)."""
        assert self.oncpu is not None, "the assembly hooks model/cpus.py:oncpu in"
        return self.oncpu(self, t)

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
            g = And(g, self.on_cpu(t))
        if isinstance(g, Const) and not g.value:
            return  # a case that can never happen (e.g. a check a registration makes moot)
        fn = sources.locate(fn, self.moved)
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


