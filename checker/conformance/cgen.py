"""Compile a spec's scenario to a C program that runs it on the real kernel
(x86-64 Linux, glibc >= 2.35 registering rseq with RSEQ_SIG).

Every code block (each thread's program and each handler) becomes one
file-scope asm function in which every model instruction is a short run of
machine instructions placed at its labels, so "the ip is inside [start,
post_commit)" or "the post-syscall ip is inside the SUD region" means the
same thing in the model and on the CPU:

  nop             a busy loop of `spin` iterations (so that asynchronous
                  events can land inside a section); `spin = 0`, or a
                  single-stepped spec: one `nop`
  jmp L           jmp
  store V, N      movq $N, V(%r12)        (user variables live in a
  add V, N        addq, wrapped around     MAP_SHARED page, so the parent
                  V's declared range       reads them even after a kill;
  beq/bne V, N, L cmpq + je/jne            `tls.X` in a __thread array)
  rseq_cs NAME|0  leaq desc, %rax; movq %rax, 8(%r13)   (r13 = glibc's area)
  syscall NAME    argument set-up, then the 2-byte `syscall`: a restart
                  rewind (ip -= 2) lands on it, as in the model
  exit            SYS_exit (the thread; the process ends with its last one)
  sigreturn       rsp back to the frame, then rt_sigreturn from this very
                  address (not glibc's restorer: SUD judges its ip)
  rseq_register / rseq_unregister   rseq(area, len, flags, sig); the result
                  goes to a per-thread TLS word that `beq rseq_ret` tests
  sud_on / sud_off / sud_select     prctl(PR_SET_SYSCALL_USER_DISPATCH) with
                  the labels' addresses and a per-thread TLS selector byte
  set_tf/clear_tf pushfq; or/and $0x100, (%rsp); popfq
  mov/load/store/add/sub/blt/bge on registers, per-CPU arrays and rseq
                  fields: checker/conformance/cgen_data.py (%r0..%r8 in rbp, r15, rbx,
                  r9, r8, r10, rsi, rdi, rdx; a spec with data routes its v0
                  store/add/beq/bne there too)

Descriptors are struct rseq_cs {u32 version, u32 flags, u64 start_ip,
u64 post_commit_offset, u64 abort_ip}, 32-byte aligned in a writable section,
one per (descriptor, code block) as the model's instances; the 4 bytes
before each abort label are the signature, as the x86 `ud1` encoding librseq
uses (0f b9 3d + imm32).  An abort target that ordinary code falls into is
reached by a jmp over the signature.  A block ends with `hlt` (#GP: SIGSEGV),
the model's fault of a context that runs off the end of its code.

Handlers are asm too (installed with SA_SIGINFO and the spec's flags): they
load r12/r13 themselves and keep the entry rsp in r14 for `sigreturn`; the
kernel's rt_sigreturn restores every register of the interrupted context.

The environment is the parent process: per run it forks the child, waits
until its threads are about to start, sends up to `max_signals` signals per
thread (tgkill, as the model's thread-directed sends) at random times within
a window calibrated to the length of a run (stop signals are followed by
SIGCONT), then writes to the pipe the child's `read` sleeps on until the
child ends.  Preemption and migration cannot be forced: they happen in the
background (the child's threads are pinned to one CPU beside the parent, so
they rarely migrate; with `membarrier_rseq` they are spread over the CPUs,
since the fence's IPIs go to the other CPUs),
and a conformance spec lets the model allow them; the runner counts the runs
with an involuntary context switch.  A spec with CPU data places its
threads as the model does: each is pinned to its `[thread.T] cpu` (default
0) before its code, the parent to a CPU none starts on; with `migration`
each is then free on the spec's CPUs, and the parent moves a random thread
to a random CPU NT times per run (sched_setaffinity to that CPU, then free
again: a migration at a preemption, which the model allows).  For a spec without preemption the child
runs SCHED_FIFO where permitted and the runner sets its preempted runs aside.
With `notify_resume = true` the child arms ITIMER_PROF with SIGPROF blocked:
its expiry queues task_work, a TIF_NOTIFY_RESUME without any rseq event
(POSIX_CPU_TIMERS_TASK_WORK), at a random CPU time within the window; CPU
timers are checked at ticks (4 ms at HZ=250), so it lands inside a section
only when `nop`s spin for milliseconds (`--spin`).
With `[environment] glibc_rseq = false` the program runs under
GLIBC_TUNABLES=glibc.pthread.rseq=0 (`Program.env`).  A thread with
`ptrace = "singlestep"` is traced by the parent: its block starts with an
`int3`, after which the parent PTRACE_SINGLESTEPs it to the end, suppressing
each SIGTRAP and passing on every other signal (kernel/ptrace.c:
ptrace_resume; each stop is a schedule-out, as in the model).

Refused (`Unsupported`): anything with no faithful kernel counterpart here:
set_desc (the next-syscall descriptor is a proposal no kernel implements),
assert (use [outcomes]), seccomp and PTRACE_SYSCALL
tracing, several threads with ptrace, a SUD region whose labels are in
different blocks or are abort targets, syscalls other than SYSCALL_NR;
for the data machine (checker/conformance/cgen_data.py) %r9..%r15, a register an
instruction of its block clobbers, a handler that reads a register before
writing it, a register index with a SIGSEGV handler, rseq fields with an
own rseq area.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rseqcheck.checker.conformance.cgen_data import DataGen, uses_data
from rseqcheck.checker.outputs.escape import c_ident, c_string, terminal
from rseqcheck.model.program import Instr, Segment
from rseqcheck.model.signals import DEFAULT_STOP, SIGNUM
from rseqcheck.model.spec import Spec

# Syscalls the generator can drive, with their x86-64 numbers.
SYSCALL_NR = {"getpid": 39, "getppid": 110, "gettid": 186, "sched_yield": 24, "read": 0, "nanosleep": 35}
NR_RT_SIGRETURN, NR_EXIT, NR_PRCTL, NR_RSEQ = 15, 60, 157, 334
PR_SET_SYSCALL_USER_DISPATCH = 59
RSEQ_SIG = 0x53053053
OTHER_SIG = 0x0BADC0DE  # signature = "other": any word but RSEQ_SIG
RSEQ_ERRNO = {"0": 0, "EINVAL": -22, "EPERM": -1, "EBUSY": -16, "EFAULT": -14, "ENOSYS": -38, "EACCES": -13}  # rseq_ret values (-errno)
KERNEL_ADDR = 0xFFFFFFFF81000000  # rseq_register kernel: fails access_ok
UNMAPPED_ADDR = 0x1000  # rseq_register unmapped: below vm.mmap_min_addr, never mapped
NR_MUNMAP, NR_MEMBARRIER = 11, 324
MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ = 1 << 7
MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ = 1 << 8
PAGE = 4096
CS_FLAG_BITS = {"NO_RESTART_ON_PREEMPT": 1, "NO_RESTART_ON_SIGNAL": 2, "NO_RESTART_ON_MIGRATE": 4}
SA_FLAG_C = {"SA_RESTART": "SA_RESTART", "SA_NODEFER": "SA_NODEFER"}
NANOSLEEP_NS = 200_000  # the nanosleep's duration: long enough to sleep, short enough for many runs
# The parent writes to the pipe this long after its last signal: a woken reader
# that already finds data returns it instead of seeing the signal (___wait_event
# tests the condition first), and a VM's wake-up latency is tens of µs.
READ_DELAY_US = 1000
SHARED_V = 24  # offset of v[0] in struct rsc_shared (ready, tsc0, tsc1 before it)
TF = 0x100  # X86_EFLAGS_TF


class Unsupported(Exception):
    """The spec uses something the generator cannot drive faithfully."""


@dataclass
class Program:
    source: str  # the C program
    uvars: list[str]  # user variables, in the order the program prints them
    signals: list[str]  # environment signals
    max_signals: int
    env: dict[str, str] = field(default_factory=dict)  # environment the program must run with
    stepped: bool = False  # single-stepped (by a tracer or its own TF): `nop` is one instruction


def _seg_id(seg: Segment) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", seg.name.replace("handler ", "h_"))


def _where(ins: Instr) -> str:
    return f"line {ins.line}: {ins.text or ins.op}"


def _c_string(line: str) -> str:
    return "\t" + c_string(line + "\n")  # every string in the C goes through c_string


class _Gen:
    def __init__(self, spec: Spec, spin: int):
        self.spec = spec
        self.uvars = _user_vars(spec)
        self.tls = _user_vars(spec, tls=True)
        self.off = {n: SHARED_V + 8 * i for i, n in enumerate(self.uvars)}
        self.stepped = any(t.ptrace_step for t in spec.threads) or any(
            ins.op in ("set_tf", "clear_tf") for seg in self.segments() for ins in seg.instrs)
        self.spin = 0 if self.stepped else spin
        self.areas: set[str] = set()  # own struct rseq areas of rseq_register/unregister
        self.membarrier = False  # a membarrier_rseq is issued
        self.unmapped: set[str] = set()  # descriptors a dlclose unmaps
        # descriptor instances: (name, block) for every block holding all three labels
        self.homes: dict[str, list[Segment]] = {
            c.name: [s for s in self.segments() if all(lab in s.labels for lab in (c.start, c.post_commit, c.abort))]
            for c in spec.cs.values()
        }
        # the data machine (checker/conformance/cgen_data.py): registers, arrays, rseq fields, placement
        self.data = DataGen(spec, self) if uses_data(spec) else None
        if self.data is not None:
            self.uvars = self.data.names  # the model's outcome variables and per-CPU slots
            self.off = {n: SHARED_V + 8 * i for i, n in enumerate(self.uvars)}
            self.tls = sorted(set(self.tls) | set(self.data.tls))

    def segments(self) -> list[Segment]:
        return [t.segment for t in self.spec.threads] + [
            h.segment for h in self.spec.handlers.values() if h.segment is not None]

    def sym(self, seg: Segment, label: str) -> str:
        return f"rsc_L_{_seg_id(seg)}_{c_ident(label)}"

    def cs_sym(self, name: str, seg: Segment) -> str:
        return f"rsc_cs_{c_ident(name)}_{_seg_id(seg)}"

    def instance(self, name: str, seg: Segment, ins: Instr) -> Segment:
        """The block whose instance `rseq_cs NAME` in `seg` arms (as
        model.build.Builder.instance_for)."""
        homes = self.homes[name]
        if seg in homes:
            return seg
        if len(homes) == 1:
            return homes[0]
        raise Unsupported(f"{_where(ins)}: rseq_cs {name} has instances in several blocks")

    def slot(self, name: str) -> str:
        """Where user variable `name` lives: the shared page (r12), or for a
        per-thread `tls.X` a slot of this thread's TLS (never reported: the
        model's outcomes hold global variables only)."""
        if name.startswith("tls."):
            return f"%fs:rsc_tls@tpoff+{8 * self.tls.index(name)}"
        return f"{self.off[name]}(%r12)"

    def label_home(self, label: str, ins: Instr) -> Segment:
        homes = [s for s in self.segments() if label in s.labels]
        if len(homes) != 1:
            raise Unsupported(f"{_where(ins)}: label {label!r} is in {len(homes)} blocks")
        return homes[0]

    def abort_labels(self, seg: Segment) -> set[str]:
        return {c.abort for c in self.spec.cs.values() if seg in self.homes[c.name]}

    # -------------------------------------------------------------- blocks

    def descriptors(self) -> list[str]:
        out: list[str] = []
        closed = {ins.args[0] for seg in self.segments() for ins in seg.instrs if ins.op == "dlclose"}
        for c in self.spec.cs.values():
            c_ident(c.name)  # it becomes part of symbols and section names
            if c.name in closed:
                # alone in whole pages, so that dlclose can unmap them and nothing else
                out += [f'.pushsection .data.rsc_page_{c.name}, "aw"', f".balign {PAGE}", f"rsc_page_{c.name}:",
                        ".popsection"]
            for seg in self.homes[c.name]:
                flags = sum(CS_FLAG_BITS[f] for f in c.flags)
                s = self.cs_sym(c.name, seg)
                section = f".data.rsc_page_{c.name}" if c.name in closed else ".data.rsc_rseq_cs"
                out += [
                    f'.pushsection {section}, "aw"',
                    ".balign 32",
                    f".globl {s}",
                    f".type {s}, @object",
                    f".size {s}, 32",
                    f"{s}:",
                    f".long {c.version}, {flags}",
                    f".quad {self.sym(seg, c.start)}, {self.sym(seg, c.post_commit)} - {self.sym(seg, c.start)}, "
                    f"{self.sym(seg, c.abort)}",
                    ".popsection",
                ]
            if c.name in closed:
                out += [f'.pushsection .data.rsc_page_{c.name}, "aw"', f".balign {PAGE}", ".popsection"]
        return out

    def block(self, seg: Segment, fn: str, prologue: list[str]) -> list[str]:
        sig_at: dict[str, int] = {}  # abort label -> the word before it
        for c in self.spec.cs.values():
            if seg in self.homes[c.name]:
                w = RSEQ_SIG if c.signature_ok else OTHER_SIG
                if sig_at.setdefault(c.abort, w) != w:
                    raise Unsupported(f"abort label {c.abort!r} is shared by descriptors with different signatures")
        out = [".text", f".globl {fn}", f".type {fn}, @function", ".p2align 4", f"{fn}:", *prologue]
        falls_through = True
        for ins in seg.instrs:
            aborts = [lab for lab in ins.labels if lab in sig_at]
            for lab in ins.labels:
                if lab not in sig_at:
                    out += [f".globl {self.sym(seg, lab)}", f"{self.sym(seg, lab)}:"]
            if aborts:
                if falls_through:
                    out.append(f"jmp {self.sym(seg, aborts[0])}")  # never execute the signature
                out += [".byte 0x0f, 0xb9, 0x3d", f".long {sig_at[aborts[0]]:#x}"]
                for lab in aborts:
                    out += [f".globl {self.sym(seg, lab)}", f"{self.sym(seg, lab)}:"]
            out += [f"# {terminal(ins.text or ins.op, keep='')}"] + self.instr(seg, ins, sig_at)
            falls_through = ins.op not in ("jmp", "exit", "sigreturn")
        # past the block's end (a dispatched exit or sigreturn): a fault, SIGSEGV as in the model
        out += ["hlt", f".size {fn}, .-{fn}"]
        return out

    def instr(self, seg: Segment, ins: Instr, sig_at: dict[str, int]) -> list[str]:
        op, a = ins.op, ins.args
        if self.data is not None:
            asm = self.data.instr(seg, ins)
            if asm is not None:
                return asm
        if op == "nop":
            return ["nop"] if self.spin <= 0 else [f"movl ${self.spin}, %ecx", "1: decl %ecx", "jnz 1b"]
        if op == "jmp":
            return [f"jmp {self.sym(seg, a[0])}"]
        if op == "store":
            return [f"movq ${a[1]}, {self.slot(a[0])}"]
        if op == "add":
            # C arithmetic on a narrow type, as the model's add: wrap around the declared range
            lo, hi = self.spec.variables[a[0]]
            size = hi - lo + 1
            return [f"movq {self.slot(a[0])}, %rax", f"addq ${a[1]}, %rax",
                    f"cmpq ${hi}, %rax", "jle 1f", f"subq ${size}, %rax",
                    f"1: cmpq ${lo}, %rax", "jge 2f", f"addq ${size}, %rax",
                    f"2: movq %rax, {self.slot(a[0])}"]
        if op in ("beq", "bne"):
            jcc = f"{'je' if op == 'beq' else 'jne'} {self.sym(seg, a[2])}"
            if a[0] == "rseq_ret":
                return [f"cmpq ${RSEQ_ERRNO[str(a[1])]}, %fs:rsc_rseq_ret@tpoff", jcc]
            if a[0] == "rseq_size":  # glibc's __rseq_size (in ld.so)
                return ["movq __rseq_size@GOTPCREL(%rip), %rax", f"cmpl ${a[1]}, (%rax)", jcc]
            if not isinstance(a[1], int):
                raise Unsupported(f"{_where(ins)}: {op} on {a[1]!r} is not generated")
            return [f"cmpq ${a[1]}, {self.slot(a[0])}", jcc]
        if op == "rseq_cs":
            if a[0] == "0":
                return ["movq $0, 8(%r13)"]
            home = self.instance(a[0], seg, ins)
            return [f"leaq {self.cs_sym(a[0], home)}(%rip), %rax", "movq %rax, 8(%r13)"]
        if op == "syscall":
            return _syscall(ins)
        if op == "exit":
            # tsc1: when the run ended, for the parent's window calibration
            return ["rdtsc", "movl %eax, 16(%r12)", "movl %edx, 20(%r12)",
                    f"movl ${NR_EXIT}, %eax", "xorl %edi, %edi", "syscall"]
        if op == "sigreturn":
            if seg.kind != "handler":
                raise Unsupported(f"{_where(ins)}: sigreturn: rt_sigreturn outside a handler frame")
            # the frame starts at the entry rsp (pretcode); rt_sigreturn finds it at rsp - 8
            return ["leaq 8(%r14), %rsp", f"movl ${NR_RT_SIGRETURN}, %eax", "syscall"]
        if op in ("rseq_register", "rseq_unregister"):
            area, ln, sig = a
            if area == "tls":
                setup = ["movq %r13, %rdi"]
            elif area == "kernel":
                setup = [f"movabsq ${KERNEL_ADDR:#x}, %rdi"]
            elif area == "unmapped":
                setup = [f"movl ${UNMAPPED_ADDR:#x}, %edi"]
            else:
                self.areas.add(area)
                setup = ["movq %fs:0, %rdi", f"leaq rsc_area_{area}@tpoff(%rdi), %rdi"]
            flags = 1 if op == "rseq_unregister" else 0  # RSEQ_FLAG_UNREGISTER
            word = RSEQ_SIG if sig == "RSEQ_SIG" else OTHER_SIG
            return setup + [f"movl ${ln}, %esi", f"movl ${flags}, %edx", f"movl ${word:#x}, %r10d",
                            f"movl ${NR_RSEQ}, %eax", "syscall", "movq %rax, %fs:rsc_rseq_ret@tpoff"]
        if op == "sud_on":
            # blocks are emitted in the model's address order (threads, then handlers as
            # written), so a region may span blocks as model.builder's label_addr lets it
            where: list[tuple[Segment, str]] = []
            for lab in a[:2]:
                home = seg if lab in seg.labels else self.label_home(lab, ins)
                if lab in self.abort_labels(home):
                    raise Unsupported(f"{_where(ins)}: SUD region label {lab!r} is an abort target "
                                      "(the signature sits before it)")
                where.append((home, lab))
            (slo, lo), (shi, hi) = where
            sel = ["xorl %r8d, %r8d"] if "noselector" in a[2:] else ["movq %fs:0, %r8", "leaq rsc_selector@tpoff(%r8), %r8"]
            mode = 2 if "inclusive" in a[2:] else 1  # PR_SYS_DISPATCH_INCLUSIVE_ON (6.17+) | PR_SYS_DISPATCH_ON
            if slo is shi and slo.labels[lo] == shi.labels[hi]:
                # An empty region: the kernel wants offset 0 too (kernel/entry/syscall_user_dispatch.c:
                # task_set_syscall_user_dispatch, -EINVAL for len 0 at a non-zero offset, probe p07f)
                region = ["xorl %edx, %edx", "xorl %r10d, %r10d"]
            else:
                region = [f"leaq {self.sym(slo, lo)}(%rip), %rdx", f"leaq {self.sym(shi, hi)}(%rip), %r10",
                          "subq %rdx, %r10"]
            return [f"movl ${PR_SET_SYSCALL_USER_DISPATCH}, %edi", f"movl ${mode}, %esi",
                    *region, *sel, f"movl ${NR_PRCTL}, %eax", "syscall"]
        if op == "sud_off":
            return [f"movl ${PR_SET_SYSCALL_USER_DISPATCH}, %edi", "xorl %esi, %esi", "xorl %edx, %edx",
                    "xorl %r10d, %r10d", "xorl %r8d, %r8d", f"movl ${NR_PRCTL}, %eax", "syscall"]
        if op == "sud_select":
            if a[0] == "unmapped":
                raise Unsupported(f"{_where(ins)}: sud_select unmapped: unmapping the selector is a syscall here "
                                  "(munmap), which SUD itself would judge; the model's is a plain user step")
            v = {"ALLOW": 0, "BLOCK": 1}.get(a[0]) if not a[0].isdigit() else int(a[0])  # SYSCALL_DISPATCH_FILTER_*
            return [f"movb ${v}, %fs:rsc_selector@tpoff"]
        if op == "membarrier_rseq":
            self.membarrier = True  # the child registers for it first, as the model assumes
            return [f"movl ${MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ}, %edi", "xorl %esi, %esi", "xorl %edx, %edx",
                    f"movl ${NR_MEMBARRIER}, %eax", "syscall"]
        if op == "dlclose":
            # the descriptor's page goes: munmap of the page its instances sit alone in
            self.unmapped.add(a[0])
            return [f"leaq rsc_page_{a[0]}(%rip), %rdi", f"movl ${PAGE}, %esi", f"movl ${NR_MUNMAP}, %eax", "syscall"]
        if op == "clone":
            if "raw" in a[1:]:
                raise Unsupported(f"{_where(ins)}: clone raw: a bare clone(CLONE_VM|CLONE_THREAD) is not generated")
            if any(seg in self.homes[c.name] and seg.labels[c.start] <= seg.instrs.index(ins) < seg.labels[c.post_commit]
                   for c in self.spec.cs.values()):
                raise Unsupported(f"{_where(ins)}: clone inside a critical section: glibc's pthread_create "
                                  "issues the clone syscall from its own code, outside the section")
            idx = [t.name for t in self.spec.threads].index(a[0])
            # pthread_create from C (glibc registers the new thread's rseq): rbx keeps rsp, which
            # is 16-byte aligned for the call; r12-r14 are callee-saved
            return ["movq %rsp, %rbx", "andq $-16, %rsp", f"movl ${idx}, %edi", "call rsc_clone", "movq %rbx, %rsp"]
        if op == "fault":
            # one faulting instruction each (SIGFPE: the divide), as the model's one step
            asm = {"SIGSEGV": ["movq 0, %rax"], "SIGILL": ["ud2"], "SIGTRAP": ["int3"],
                   "SIGFPE": ["xorl %ecx, %ecx", "xorl %edx, %edx", "divl %ecx"]}.get(a[0])
            if asm is None:
                raise Unsupported(f"{_where(ins)}: fault {a[0]}: no instruction raises it reliably here")
            return asm
        if op == "set_tf":
            return ["pushfq", f"orq ${TF:#x}, (%rsp)", "popfq"]
        if op == "clear_tf":
            return ["pushfq", f"andq ${~TF}, (%rsp)", "popfq"]
        why = {
            "set_desc": "the next-syscall descriptor has no kernel counterpart (a proposal)",
            "assert": "assert has no machine counterpart; state the claim in [outcomes] instead",
        }.get(op, "not generated yet")
        raise Unsupported(f"{_where(ins)}: {op}: {why}")


def generate(spec: Spec, spin: int = 200000) -> Program:
    env = spec.env
    for t in spec.threads:
        if t.seccomp:
            raise Unsupported(f"thread {t.name}: seccomp filters are not generated yet")
        if t.ptrace_syscall:
            raise Unsupported(f"thread {t.name}: ptrace = \"syscall\" (PTRACE_SYSCALL stops) is not generated yet")
        if t.area is not None and sum(1 for u in spec.threads if u.area == t.area) > 1:
            raise Unsupported(f"thread {t.name}: rseq_area {t.area} shared in turn (glibc's stack cache cannot be "
                              "made to hand out one thread's stack to another)")
    for seg in [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]:
        for ins in seg.instrs:
            if ins.op in ("beq", "bne") and ins.args[0] == "ret":
                raise Unsupported(f"{_where(ins)}: {ins.op} on ret (a syscall's result) is not generated yet")
    traced = [t for t in spec.threads if t.ptrace_step]
    if traced and (len(spec.threads) > 1 or env.max_signals):
        raise Unsupported("ptrace = \"singlestep\" is generated for one thread without environment signals "
                          "(the parent is the tracer)")
    if env.max_signals > env.max_nesting and any(
        h.action == "handler" and h.sig in env.signals for h in spec.handlers.values()
    ):
        # the kernel would nest deeper than the model's bound
        raise Unsupported(f"max_signals = {env.max_signals} > max_nesting = {env.max_nesting}: "
                          "real handlers could nest deeper than the model explores")
    if env.max_notify_signals:
        raise Unsupported("max_notify_signals (io_uring task_work) is not generated yet")
    if env.notify_resume and "SIGPROF" in env.signals:
        raise Unsupported("SIGPROF is the runner's notify-resume timer; use another signal")
    for s in env.signals:
        if s == "SIGCONT" and "SIGCONT" in spec.handlers and any(x in DEFAULT_STOP for x in env.signals):
            raise Unsupported("a SIGCONT handler with stop signals: the runner continues stopped children with SIGCONT")
    ops = {ins.op for t in spec.threads for ins in t.segment.instrs} | {
        ins.op for h in spec.handlers.values() if h.segment for ins in h.segment.instrs}
    if "sud_on" in ops and ops & {"dlclose", "clone"}:
        raise Unsupported("dlclose/clone with SUD: munmap and glibc's clone are syscalls here, issued from "
                          "code outside the spec's blocks, which SUD would judge")
    for op in ("fork", "execve"):
        if op in ops:
            raise Unsupported(f"{op}: a new process or image is not generated yet")
    cloned = {ins.args[0] for t in spec.threads for ins in t.segment.instrs if ins.op == "clone"} | {
        ins.args[0] for h in spec.handlers.values() if h.segment for ins in h.segment.instrs if ins.op == "clone"}
    if spec.threads[0].name in cloned:
        raise Unsupported(f"{spec.threads[0].name} is the process's first thread; it cannot be cloned")
    g = _Gen(spec, spin)
    if g.data is not None:
        g.data.check()
    asm = g.descriptors()
    for t in spec.threads:
        pro = ["movq %rdi, %r12", "movq %rsi, %r13"]  # the shared page, glibc's struct rseq
        if g.data is not None:
            pro += g.data.thread_prologue(t.segment)  # the model's registers start at 0
        if t.ptrace_step:
            pro.append("int3")  # the tracer starts single-stepping here
        asm += g.block(t.segment, f"rsc_thread_{t.name}", pro)
    hsigs = [s for s, h in spec.handlers.items() if h.action == "handler"]  # model.builder's block order
    for s in hsigs:
        seg = spec.handlers[s].segment
        assert seg is not None
        pro = ["movq %rsp, %r14", "movq rsc_shared(%rip), %r12",
               "movq %fs:0, %r13", "addq rsc_rseq_off(%rip), %r13"]
        asm += g.block(seg, f"rsc_handler_{s}", pro)
    decls = [f"void rsc_handler_{s}(int, siginfo_t *, void *);" for s in hsigs]
    decls += [f"void rsc_thread_{c_ident(t.name)}(struct rsc_shared *, volatile void *) __attribute__((noreturn));"
              for t in spec.threads]
    decls += [f"__thread struct rsc_area rsc_area_{c_ident(a)};" for a in sorted(g.areas)]
    if g.tls:
        decls.append(f"__thread int64_t rsc_tls[{len(g.tls)}];   /* tls.X user variables */")
    starts = ",\n".join(f"\trsc_thread_{t.name}" for t in spec.threads)
    install = "\n".join(_install(spec, s) for s in sorted(spec.handlers, key=lambda s: SIGNUM[s]))
    area_flags = [sum(CS_FLAG_BITS[f] for f in t.rseq_flags) for t in spec.threads]
    reads = any(ins.op == "syscall" and ins.args[0] == "read" for seg in g.segments() for ins in seg.instrs)
    pins, free = g.data.placement() if g.data is not None else ([], 0)
    src = _TEMPLATE
    for k, v in {
        "@NV@": str(max(1, len(g.uvars))),
        "@NVREAL@": str(len(g.uvars)),
        "@NT@": str(len(spec.threads)),
        "@ASM@": "\n".join(_c_string(line) for line in asm),
        "@DECLS@": "\n".join(decls),
        "@STARTS@": starts,
        "@INSTALL@": install,
        "@AREA_FLAGS@": ", ".join(f"{f}u" for f in area_flags),
        "@NSIGS@": str(len(env.signals)),
        "@SIGS@": ", ".join(str(SIGNUM[s]) for s in env.signals) or "0",
        "@STOPS@": ", ".join("1" if _stops(spec, s) else "0" for s in env.signals) or "0",
        "@MAXSIG@": str(env.max_signals if env.signals else 0),
        "@NANOSLEEP_NS@": str(NANOSLEEP_NS),
        "@NOTIFY_TIMER@": "1" if env.notify_resume else "0",
        "@NO_PREEMPT@": "0" if env.preemption else "1",
        "@READ_DELAY_US@": str(READ_DELAY_US if reads else 0),
        "@GLIBC_RSEQ@": "1" if env.glibc_rseq else "0",
        "@TRACED@": "1" if traced else "0",
        "@AT_START@": ", ".join("0" if t.name in cloned else "1" for t in spec.threads),
        "@MEMBARRIER@": "1" if g.membarrier else "0",
        "@CPU_PIN@": ", ".join(str(c) for c in pins) if pins else ", ".join("-1" for _ in spec.threads),
        "@CPU_FREE@": str(free),
        "@PLACED@": "1" if pins else "0",
        "@PARENT_CPU@": str(next((c for c in range(env.cpus) if c not in pins), -1)) if pins else "-1",
    }.items():
        src = src.replace(k, v)
    run_env = {} if env.glibc_rseq else {"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}
    return Program(src, g.uvars, list(env.signals), env.max_signals, run_env, g.stepped)


def _install(spec: Spec, sig: str) -> str:
    h = spec.handlers[sig]
    num = SIGNUM[sig]
    if h.action != "handler":
        disp = "SIG_IGN" if h.action == "ignore" else "SIG_DFL"
        return f"\tsignal({num}, {disp});"
    flags = " | ".join(["SA_SIGINFO"] + [SA_FLAG_C[f] for f in h.flags])
    mask = "".join(f"\tsigaddset(&sa.sa_mask, {SIGNUM[m]});\n" for m in h.mask)
    return (f"\tmemset(&sa, 0, sizeof(sa));\n\tsa.sa_sigaction = rsc_handler_{sig};\n\tsa.sa_flags = {flags};\n"
            f"\tsigemptyset(&sa.sa_mask);\n{mask}\tif (sigaction({num}, &sa, NULL)) _exit(99);")


def _stops(spec: Spec, sig: str) -> bool:
    """The signal's action is to stop the process (the parent then continues it)."""
    h = spec.handlers.get(sig)
    return sig == "SIGSTOP" or (sig in DEFAULT_STOP and (h is None or h.action == "default"))


def _user_vars(spec: Spec, tls: bool = False) -> list[str]:
    """The global user variables (or, `tls`, the per-thread ones), sorted."""
    names: set[str] = set()
    segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
    for seg in segs:
        for ins in seg.instrs:
            if ins.op in ("store", "add", "beq", "bne"):
                if ins.args[0] in ("rseq_ret", "rseq_size", "ret"):
                    continue
                if ins.args[0].startswith("tls.") == tls:
                    names.add(ins.args[0])
    return sorted(names)


def _syscall(ins: Instr) -> list[str]:
    name = ins.args[0]
    if name not in SYSCALL_NR:
        raise Unsupported(f"{_where(ins)}: syscall {name} is not generated (known: {', '.join(SYSCALL_NR)})")
    nr = SYSCALL_NR[name]
    if name == "read":  # one byte from the pipe the parent feeds
        setup = ["movl rsc_pipe_rd(%rip), %edi", "leaq rsc_buf(%rip), %rsi", "movl $1, %edx"]
    elif name == "nanosleep":
        setup = ["leaq rsc_ts(%rip), %rdi", "xorl %esi, %esi"]
    else:
        setup = []
    return setup + [f"movl ${nr}, %eax", "syscall"]


def descriptor_symbol(name: str, seg: Segment) -> str:
    """The symbol of descriptor `name`'s instance in block `seg`."""
    return f"rsc_cs_{c_ident(name)}_{_seg_id(seg)}"


def label_symbol(seg: Segment, label: str) -> str:
    return f"rsc_L_{_seg_id(seg)}_{c_ident(label)}"


__all__ = ["Program", "Unsupported", "descriptor_symbol", "generate", "label_symbol"]


# ----------------------------------------------------------------- program

_TEMPLATE = r"""/* Generated by rseqcheck (checker/conformance/cgen.py): one spec scenario, run on the
 * real kernel.  Usage: PROG RUNS SEED WINDOW_US (0: calibrate).
 * Prints "window TICKS US" then one line per run:
 *   run exit|signal|hung|error CODE NIVCSW V0 V1 ... */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <x86intrin.h>

#define NV @NV@
#define NVREAL @NVREAL@
#define NT @NT@
#define NSIGS @NSIGS@
#define MAXSIG @MAXSIG@
#define NSEND (MAXSIG * NT)
#define READ_DELAY_US @READ_DELAY_US@
#define NOTIFY_TIMER @NOTIFY_TIMER@
#define NO_PREEMPT @NO_PREEMPT@
#define GLIBC_RSEQ @GLIBC_RSEQ@
#define TRACED @TRACED@
#define MEMBARRIER @MEMBARRIER@
#define CPU_FREE @CPU_FREE@     /* migration: threads run free on CPUs 0..CPU_FREE-1 */
#define NMOVE (CPU_FREE > 1 ? NT : 0)   /* forced migrations per run (the parent moves a thread) */
#define PLACED @PLACED@       /* threads placed on CPUs (the parent's too): the parent sleeps, not spins */
#define PARENT_CPU @PARENT_CPU@   /* placed: the parent's CPU (-1: 0) */
#ifndef RSC_PARENT_LAG_US
#define RSC_PARENT_LAG_US 0       /* tests: the parent dawdles this long before leaving the child's CPU */
#endif

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

struct rsc_shared {          /* offsets used by the asm: tsc1 at 16, v at 24 */
	volatile int64_t ready;
	volatile uint64_t tsc0;
	volatile uint64_t tsc1;
	volatile int64_t v[NV];
	volatile int64_t prof_us;    /* CPU time until the notify-resume timer fires */
	volatile int32_t tid[NT];
	volatile int32_t started;
	volatile int32_t parent_moved;   /* the parent has left the CPU the child is born on */
};
_Static_assert(offsetof(struct rsc_shared, v) == 24, "layout");

/* a struct rseq of the program's own (rseq_register AREA): room for length 64 */
struct rsc_area { uint32_t w[16]; } __attribute__((aligned(32)));

struct rsc_shared *rsc_shared;       /* read by the asm handlers */
long rsc_rseq_off;                   /* __rseq_offset, for the asm handlers */
__thread long rsc_rseq_ret;          /* the last rseq() result of this thread (-errno) */
__thread unsigned char rsc_selector; /* this thread's SUD selector (ALLOW = 0) */
int rsc_pipe_rd = -1;
char rsc_buf[64];
struct timespec rsc_ts = { 0, @NANOSLEEP_NS@ };
@DECLS@

__asm__(
@ASM@
);

typedef void (*rsc_start_fn)(struct rsc_shared *, volatile void *);
static const rsc_start_fn starts[NT] = {
@STARTS@
};
static const uint32_t area_flags[NT] = { @AREA_FLAGS@ };
static const int at_start[NT] = { @AT_START@ };   /* 0: started by a `clone` */
static const int cpu_pin[NT] = { @CPU_PIN@ };     /* the model's placement; -1: none */

static volatile void *rseq_area(void)
{
	char *tp;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp + __rseq_offset;
}

static int ncpu;
static int parent_cpu = 0, child_cpu = 1;

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

/* migration: the thread may run on any of the spec's CPUs */
static void pin_all(int n)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	for (int c = 0; c < n; c++)
		CPU_SET(c, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

/* Each thread: publish its tid, wait for the start, run its block. */
static void *thread_main(void *arg)
{
	long i = (long)arg;
	if (MEMBARRIER && i > 0 && ncpu > 1)   /* the fence IPIs other CPUs: spread the threads */
		pin((int)((1 + i) % ncpu));
	if (cpu_pin[i] >= 0)   /* [thread.T] cpu: it starts on that CPU, as in the model */
		pin(cpu_pin[i]);
	rsc_shared->tid[i] = (int32_t)syscall(SYS_gettid);
	if (area_flags[i])
		((volatile uint32_t *)rseq_area())[4] = area_flags[i];   /* struct rseq.flags */
	__atomic_fetch_add(&rsc_shared->started, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&rsc_shared->ready, __ATOMIC_ACQUIRE) != 2)
		__builtin_ia32_pause();
	if (CPU_FREE)
		pin_all(CPU_FREE);
	if (i == 0) {
		if (NOTIFY_TIMER && rsc_shared->prof_us > 0) {
			struct itimerval it = { { 0, 0 }, { 0, rsc_shared->prof_us } };
			setitimer(ITIMER_PROF, &it, NULL);
		}
		rsc_shared->tsc0 = __rdtsc();
	}
	starts[i](rsc_shared, rseq_area());
	__builtin_unreachable();
}

/* `clone T`: pthread_create (glibc registers the thread's rseq), once per thread */
void rsc_clone(long i)
{
	static int created[NT];
	pthread_t th;
	if (__atomic_exchange_n(&created[i], 1, __ATOMIC_ACQ_REL))
		return;
	if (pthread_create(&th, NULL, thread_main, (void *)i)) _exit(96);
}

static void pause_us(long us);

static void child(pid_t parent)
{
	struct sigaction sa;
	(void)sa;
	/* never outlive the runner: a SCHED_FIFO orphan spinning forever would hog its CPU */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) _exit(94);
	if (TRACED) {        /* the parent traces this process from here on */
		if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(97);
		raise(SIGSTOP);
	}
@INSTALL@
	if (NO_PREEMPT) {    /* the spec has no preemption: avoid it where allowed (CAP_SYS_NICE) */
		struct sched_param sp = { .sched_priority = 1 };
		/* not before the parent has left this CPU: spinning FIFO here would */
		/* keep it off until RT throttling (~1 s a run); sleep meanwhile */
		while (!__atomic_load_n(&rsc_shared->parent_moved, __ATOMIC_ACQUIRE))
			pause_us(20);
		sched_setscheduler(0, SCHED_FIFO, &sp);
	}
	if (NOTIFY_TIMER) {  /* SIGPROF stays pending: its timer only raises task_work */
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGPROF);
		sigprocmask(SIG_BLOCK, &m, NULL);
	}
	if (MEMBARRIER && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0))
		_exit(95);
	int n = 0;
	for (long i = 1; i < NT; i++) {
		pthread_t th;
		if (!at_start[i])
			continue;
		if (pthread_create(&th, NULL, thread_main, (void *)i)) _exit(96);
		n++;
	}
	while (__atomic_load_n(&rsc_shared->started, __ATOMIC_ACQUIRE) != n)
		__builtin_ia32_pause();
	__atomic_store_n(&rsc_shared->ready, 1, __ATOMIC_RELEASE);
	thread_main((void *)0);
}

static const int sigs[] = { @SIGS@ };
static const int stops[] = { @STOPS@ };
static uint64_t rng;
static double tpus = 1000;   /* TSC ticks per microsecond */

static uint64_t rnd(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pause_us(long us)
{
	struct timespec t = { 0, us * 1000 };
	nanosleep(&t, NULL);
}

static void on_alarm(int sig) { (void)sig; }

/* A migration, as the load balancer's: the thread goes to CPU `cpu` (the
 * affinity change returns once it is there) and is then free again. */
static void move(pid_t tid, int cpu)
{
	cpu_set_t s;
	if (tid <= 0)        /* not started (or cloned) yet */
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(tid, sizeof(s), &s) == 0) {
		CPU_ZERO(&s);
		for (int c = 0; c < CPU_FREE; c++)
			CPU_SET(c, &s);
		sched_setaffinity(tid, sizeof(s), &s);
	}
}

/* The tracer: continue to the int3 at the block's start, then single-step
 * to the end, suppressing SIGTRAP and passing every other signal on. */
static int trace_run(pid_t pid, struct rusage *ru, int *hung)
{
	int st = 0, stepping = 0;
	alarm(10);
	for (;;) {
		pid_t r = wait4(pid, &st, __WALL, ru);
		if (r < 0 && errno == EINTR) {
			*hung = 1;
			kill(pid, SIGKILL);
			wait4(pid, &st, __WALL, ru);
			break;
		}
		if (r != pid || WIFEXITED(st) || WIFSIGNALED(st))
			break;
		int sig = WSTOPSIG(st);
		if (sig == SIGTRAP)
			stepping = 1;
		ptrace(stepping ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, 0, sig == SIGTRAP ? 0 : sig);
	}
	alarm(0);
	return st;
}

/* One run: returns the wait status; *hung when the child did not end. */
static int one_run(int nsend, uint64_t window, struct rusage *ru, int *hung, int *reaped_stop)
{
	int pfd[2], st = 0;
	pid_t pid, parent = getpid();
	if (pipe(pfd)) { perror("pipe"); exit(98); }
	rsc_pipe_rd = pfd[0];
	rsc_shared->ready = 0;
	rsc_shared->started = 0;
	rsc_shared->parent_moved = 0;
	for (int i = 0; i < NT; i++) rsc_shared->tid[i] = 0;   /* a thread not cloned yet gets no signal */
	rsc_shared->tsc0 = rsc_shared->tsc1 = 0;
	for (int i = 0; i < NV; i++) rsc_shared->v[i] = 0;
	rsc_shared->prof_us = (NOTIFY_TIMER && nsend >= 0 && window) ? 1 + (int64_t)(rnd() % (uint64_t)(window / tpus + 1)) : 0;
	if (TRACED && READ_DELAY_US) {   /* no signals come: the read finds its data */
		if (write(pfd[1], "x", 1) != 1) { perror("write"); exit(98); }
	}
	fflush(stdout);
	if (ncpu > 1)        /* the child is born on CPU 1, beside the parent, not after it */
		pin(child_cpu);
	pid = fork();
	if (pid < 0) { perror("fork"); exit(98); }
	if (pid > 0 && ncpu > 1) {
		for (double t = now(); now() - t < RSC_PARENT_LAG_US * 1e-6;)   /* tests: widen the race */
			;
		pin(parent_cpu);   /* returns once the parent runs there (sched_setaffinity) */
	}
	if (pid > 0)
		__atomic_store_n(&rsc_shared->parent_moved, 1, __ATOMIC_RELEASE);
	if (pid == 0) {
		close(pfd[1]);
		child(parent);
	}
	*hung = 0;
	*reaped_stop = 0;
	memset(ru, 0, sizeof(*ru));
	if (TRACED) {
		if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) { printf("error tracee did not stop\n"); exit(98); }
		ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL);
		ptrace(PTRACE_CONT, pid, 0, 0);
	}
	double t_start = now();
	while (!__atomic_load_n(&rsc_shared->ready, __ATOMIC_ACQUIRE)) {
		if (now() - t_start > 5) break;
	}
	uint64_t t0 = __rdtsc(), at[NSEND + NMOVE + 1];   /* the child starts now */
	__atomic_store_n(&rsc_shared->ready, 2, __ATOMIC_RELEASE);
	if (TRACED) {
		st = trace_run(pid, ru, hung);
		close(pfd[0]);
		close(pfd[1]);
		return st;
	}
	int kind[NSEND + NMOVE + 1], to[NSEND + NMOVE + 1];
	for (int k = 0; k < nsend; k++) {
		at[k] = window ? rnd() % window : 0;
		kind[k] = (int)(rnd() % (NSIGS ? NSIGS : 1));
		to[k] = k % NT;      /* max_signals per thread, as the model's budgets */
	}
	int nev = nsend;
	for (int k = 0; window && k < NMOVE; k++, nev++) {   /* migrations: kind -1 - the target CPU */
		at[nev] = rnd() % window;
		to[nev] = (int)(rnd() % NT);
		kind[nev] = -1 - (int)(rnd() % (CPU_FREE ? CPU_FREE : 1));
	}
	for (int i = 1; i < nev; i++)        /* sort the send times */
		for (int j = i; j > 0 && at[j] < at[j - 1]; j--) {
			uint64_t x = at[j]; at[j] = at[j - 1]; at[j - 1] = x;
			int y = kind[j]; kind[j] = kind[j - 1]; kind[j - 1] = y;
			y = to[j]; to[j] = to[j - 1]; to[j - 1] = y;
		}
	for (int k = 0; k < nev && !*reaped_stop; k++) {
		if (PLACED) {
			uint64_t nw = __rdtsc();
			if (nw < t0 + at[k])
				pause_us((long)((t0 + at[k] - nw) / tpus));
		}
		while (__rdtsc() < t0 + at[k])
			__builtin_ia32_pause();
		if (kind[k] < 0) {
			move(rsc_shared->tid[to[k]], -1 - kind[k]);
			continue;
		}
		syscall(SYS_tgkill, pid, rsc_shared->tid[to[k]], sigs[kind[k]]);
		if (stops[kind[k]]) {          /* stopped: continue it a little later */
			if (wait4(pid, &st, WUNTRACED, ru) == pid && !WIFSTOPPED(st)) {
				*reaped_stop = 1;
				break;
			}
			pause_us(100);
			kill(pid, SIGCONT);
		}
	}
	if (!*reaped_stop) {
		if (READ_DELAY_US)   /* let a signal interrupt the sleeping read before data comes */
			pause_us(READ_DELAY_US);
		int fl = fcntl(pfd[1], F_GETFL);
		fcntl(pfd[1], F_SETFL, fl | O_NONBLOCK);
		int bytes = 0;
		double t_end = now() + 10;
		for (;;) {
			if (bytes < 4096 && write(pfd[1], "x", 1) == 1) bytes++;
			pid_t r = wait4(pid, &st, WNOHANG, ru);
			if (r == pid) break;
			if (now() > t_end) {
				*hung = 1;
				kill(pid, SIGKILL);
				wait4(pid, &st, 0, ru);
				break;
			}
			pause_us(50);
		}
	}
	close(pfd[0]);
	close(pfd[1]);
	return st;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long runs = argc > 1 ? atol(argv[1]) : 100;
	rng = argc > 2 ? strtoull(argv[2], NULL, 0) * 2654435761u + 88172645463325252ull : 88172645463325252ull;
	double window_us = argc > 3 ? atof(argv[3]) : 0;
	uint64_t window = 0;
	struct rusage ru;
	int hung, reaped_stop;
	if (GLIBC_RSEQ && __rseq_size == 0) {
		printf("error glibc did not register rseq (glibc.pthread.rseq=0?)\n");
		return 3;
	}
	if (!GLIBC_RSEQ && __rseq_size != 0) {
		printf("error glibc registered rseq: run with GLIBC_TUNABLES=glibc.pthread.rseq=0\n");
		return 3;
	}
	struct sigaction al;
	memset(&al, 0, sizeof(al));
	al.sa_handler = on_alarm;    /* no SA_RESTART: the tracer's wait4 returns EINTR */
	sigaction(SIGALRM, &al, NULL);
	rsc_rseq_off = (long)__rseq_offset;
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 0; i < NT; i++)
		if (cpu_pin[i] >= ncpu || CPU_FREE > ncpu) {
			printf("error the spec places threads on %d CPUs; this machine has %d\n",
				CPU_FREE > cpu_pin[i] ? CPU_FREE : cpu_pin[i] + 1, ncpu);
			return 3;
		}
	if (PLACED && PARENT_CPU >= 0 && PARENT_CPU < ncpu) {   /* placed threads: born on T0's CPU, */
		child_cpu = cpu_pin[0];                      /* the parent on a CPU none of them starts on */
		parent_cpu = PARENT_CPU;
	}
	if (ncpu > 1)
		pin(parent_cpu);
	rsc_shared = mmap(NULL, sizeof(*rsc_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rsc_shared == MAP_FAILED) { perror("mmap"); return 98; }
	/* TSC ticks per microsecond, to report the window */
	double c0 = now();
	uint64_t k0 = __rdtsc();
	while (now() - c0 < 0.01) ;
	tpus = (__rdtsc() - k0) / ((now() - c0) * 1e6);
	if (window_us > 0)
		window = (uint64_t)(window_us * tpus);
	else {       /* calibrate: how long does an undisturbed run take? */
		uint64_t d[16];
		int n = 0;
		for (int i = 0; i < 16; i++) {
			one_run(0, 0, &ru, &hung, &reaped_stop);
			if (rsc_shared->tsc1 > rsc_shared->tsc0)
				d[n++] = rsc_shared->tsc1 - rsc_shared->tsc0;
		}
		qsort(d, n, sizeof(d[0]), cmp_u64);
		window = n ? d[n / 2] : (uint64_t)(100 * tpus);
		if (window < 2 * tpus) window = (uint64_t)(2 * tpus);
	}
	printf("window %llu %.3f\n", (unsigned long long)window, window / tpus);
	for (long r = 0; r < runs; r++) {
		int st = one_run(NSEND, window, &ru, &hung, &reaped_stop);
		if (hung)
			printf("run hung 0");
		else if (WIFEXITED(st))
			printf("run %s %d", WEXITSTATUS(st) == 0 ? "exit" : "error", WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			printf("run signal %d", WTERMSIG(st));
		else
			printf("run error %d", st);
		printf(" %ld", ru.ru_nivcsw);
		for (int i = 0; i < NVREAL; i++)
			printf(" %lld", (long long)rsc_shared->v[i]);
		printf("\n");
	}
	return 0;
}
"""
