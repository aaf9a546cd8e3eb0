"""Compile a spec's scenario to a C program that runs it on the real kernel
(x86-64 Linux, glibc >= 2.35 registering rseq with RSEQ_SIG).

The thread's code becomes one file-scope asm function in which every model
instruction is a short run of machine instructions placed at its labels, so
"the ip is inside [start, post_commit)" means the same thing in the model and
on the CPU:

  nop             a busy loop of `spin` iterations (so that asynchronous
                  events can land inside a section); `spin = 0`: one `nop`
  jmp L           jmp
  store V, N      movq $N, V(%r12)        (user variables live in a
  add V, N        addq $N, V(%r12)         MAP_SHARED page, so the parent
  beq/bne V, N, L cmpq + je/jne            reads them even after a kill)
  rseq_cs NAME|0  leaq desc, %rax; movq %rax, 8(%r13)   (r13 = glibc's area)
  syscall NAME    argument set-up, then the 2-byte `syscall`: a restart
                  rewind (ip -= 2) lands on it, as in the model
  exit            exit_group (the helper-free child has one thread)

Descriptors are struct rseq_cs {u32 version, u32 flags, u64 start_ip,
u64 post_commit_offset, u64 abort_ip}, 32-byte aligned in a writable section;
the 4 bytes before each abort label are the signature, as the x86 `ud1`
encoding librseq uses (0f b9 3d + imm32).  An abort target that ordinary code
falls into is reached by a jmp over the signature.

Signal handlers become C functions doing the same steps (raw syscalls,
stores to the shared page); returning runs glibc's restorer, rt_sigreturn.

The environment is the parent process: per run it forks the child, waits
until the child is about to start, sends up to `max_signals` signals of the
spec's kinds at random times within a window calibrated to the length of a
run (stop signals are followed by SIGCONT), then writes to the pipe the
child's `read` sleeps on until the child ends.  Preemption and migration
cannot be forced: they happen in the background (the child is pinned beside
the parent, so it rarely migrates), and a conformance spec lets the model
allow them; the runner counts the runs with an involuntary context switch.
For a spec without preemption the child runs SCHED_FIFO where permitted and
the runner sets its preempted runs aside.
With `notify_resume = true` the child arms ITIMER_PROF with SIGPROF blocked:
its expiry queues task_work, a TIF_NOTIFY_RESUME without any rseq event
(POSIX_CPU_TIMERS_TASK_WORK), at a random CPU time within the window; CPU
timers are checked at ticks (4 ms at HZ=250), so it lands inside a section
only when `nop`s spin for milliseconds (`--spin`).

Refused (`Unsupported`): anything with no faithful kernel counterpart here:
set_desc (the next-syscall descriptor is a proposal no kernel implements),
SUD, rseq registration calls, assert (use [outcomes]), more than one thread,
handler code that is not straight-line, syscalls other than SYSCALL_NR.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.program import Instr, Segment
from model.signals import DEFAULT_STOP, SIGNUM
from model.spec import Spec

# Syscalls the generator can drive, with their x86-64 numbers.
SYSCALL_NR = {"getpid": 39, "getppid": 110, "gettid": 186, "sched_yield": 24, "read": 0, "nanosleep": 35}
HANDLER_SYSCALLS = ("getpid", "getppid", "gettid", "sched_yield")
RSEQ_SIG = 0x53053053
OTHER_SIG = 0x0BADC0DE  # signature = "other": any word but RSEQ_SIG
CS_FLAG_BITS = {"NO_RESTART_ON_PREEMPT": 1, "NO_RESTART_ON_SIGNAL": 2, "NO_RESTART_ON_MIGRATE": 4}
SA_FLAG_C = {"SA_RESTART": "SA_RESTART", "SA_NODEFER": "SA_NODEFER"}
NANOSLEEP_NS = 200_000  # the nanosleep's duration: long enough to sleep, short enough for many runs
# The parent writes to the pipe this long after its last signal: a woken reader
# that already finds data returns it instead of seeing the signal (___wait_event
# tests the condition first), and a VM's wake-up latency is tens of µs.
READ_DELAY_US = 1000
SHARED_V = 24  # offset of v[0] in struct rsc_shared (ready, tsc0, tsc1 before it)


class Unsupported(Exception):
    """The spec uses something the generator cannot drive faithfully."""


@dataclass
class Program:
    source: str  # the C program
    uvars: list[str]  # user variables, in the order the program prints them
    signals: list[str]  # environment signals
    max_signals: int


def _sym(label: str) -> str:
    return f"rsc_L_{label}"


def _cs_sym(name: str) -> str:
    return f"rsc_cs_{name}"


def _where(ins: Instr) -> str:
    return f"line {ins.line}: {ins.text or ins.op}"


def generate(spec: Spec, spin: int = 200000) -> Program:
    if len(spec.threads) != 1:
        raise Unsupported(f"{len(spec.threads)} threads: the generator drives one thread (T0) so far")
    env = spec.env
    if not getattr(env, "glibc_rseq", True):
        raise Unsupported("glibc_rseq = false: the generator uses glibc's registration")
    thread = spec.threads[0]
    seg = thread.segment
    uvars = _user_vars(spec)
    off = {n: SHARED_V + 8 * i for i, n in enumerate(uvars)}
    if env.max_signals > env.max_nesting and any(
        h.action == "handler" and h.sig in env.signals for h in spec.handlers.values()
    ):
        # the kernel would nest deeper than the model's bound
        raise Unsupported(f"max_signals = {env.max_signals} > max_nesting = {env.max_nesting}: "
                          "real handlers could nest deeper than the model explores")
    if env.notify_resume and "SIGPROF" in env.signals:
        raise Unsupported("SIGPROF is the runner's notify-resume timer; use another signal")
    for s in env.signals:
        if s == "SIGCONT" and "SIGCONT" in spec.handlers and any(x in DEFAULT_STOP for x in env.signals):
            raise Unsupported("a SIGCONT handler with stop signals: the runner continues stopped children with SIGCONT")
    asm = _thread_asm(spec, seg, off, spin)
    handlers = [_handler_c(spec, sig, off) for sig in sorted(spec.handlers, key=lambda s: SIGNUM[s])]
    area_flags = sum(CS_FLAG_BITS[f] for f in thread.rseq_flags)
    src = _TEMPLATE
    for k, v in {
        "@NV@": str(max(1, len(uvars))),
        "@NVREAL@": str(len(uvars)),
        "@ASM@": asm,
        "@HANDLERS@": "\n".join(h[0] for h in handlers),
        "@INSTALL@": "\n".join(h[1] for h in handlers),
        "@AREA_FLAGS@": str(area_flags),
        "@NSIGS@": str(len(env.signals)),
        "@SIGS@": ", ".join(str(SIGNUM[s]) for s in env.signals) or "0",
        "@STOPS@": ", ".join("1" if _stops(spec, s) else "0" for s in env.signals) or "0",
        "@MAXSIG@": str(env.max_signals if env.signals else 0),
        "@NANOSLEEP_NS@": str(NANOSLEEP_NS),
        "@NOTIFY_TIMER@": "1" if env.notify_resume else "0",
        "@NO_PREEMPT@": "0" if env.preemption else "1",
        "@READ_DELAY_US@": str(READ_DELAY_US if any(i.op == "syscall" and i.args[0] == "read" for i in seg.instrs) else 0),
    }.items():
        src = src.replace(k, v)
    return Program(src, uvars, list(env.signals), env.max_signals)


def _stops(spec: Spec, sig: str) -> bool:
    """The signal's action is to stop the process (the parent then continues it)."""
    h = spec.handlers.get(sig)
    return sig == "SIGSTOP" or (sig in DEFAULT_STOP and (h is None or h.action == "default"))


def _user_vars(spec: Spec) -> list[str]:
    names: set[str] = set()
    segs = [spec.threads[0].segment] + [h.segment for h in spec.handlers.values() if h.segment]
    for seg in segs:
        for ins in seg.instrs:
            if ins.op in ("store", "add", "beq", "bne"):
                if ins.args[0].startswith("tls.") or ins.args[0] in ("rseq_ret", "rseq_size"):
                    raise Unsupported(f"{_where(ins)}: {ins.args[0]} is not user memory the generator can hold")
                names.add(ins.args[0])
    return sorted(names)


# ------------------------------------------------------------------ thread


def _thread_asm(spec: Spec, seg: Segment, off: dict[str, int], spin: int) -> str:
    cs_here = {}
    for c in spec.cs.values():
        if not all(lab in seg.labels for lab in (c.start, c.post_commit, c.abort)):
            raise Unsupported(f"rseq_cs {c.name}: its labels are not all in {seg.name}'s code "
                              "(critical sections in handlers are not generated yet)")
        cs_here[c.name] = c
    # signature word in front of each abort target
    sig_at: dict[str, int] = {}
    for c in cs_here.values():
        w = RSEQ_SIG if c.signature_ok else OTHER_SIG
        if sig_at.setdefault(c.abort, w) != w:
            raise Unsupported(f"abort label {c.abort!r} is shared by descriptors with different signatures")
    out: list[str] = []
    for c in cs_here.values():
        flags = sum(CS_FLAG_BITS[f] for f in c.flags)
        out += [
            '.pushsection .data.rsc_rseq_cs, "aw"',
            ".balign 32",
            f".globl {_cs_sym(c.name)}",
            f".type {_cs_sym(c.name)}, @object",
            f".size {_cs_sym(c.name)}, 32",
            f"{_cs_sym(c.name)}:",
            f".long {c.version}, {flags}",
            f".quad {_sym(c.start)}, {_sym(c.post_commit)} - {_sym(c.start)}, {_sym(c.abort)}",
            ".popsection",
        ]
    out += [
        ".text",
        ".globl rsc_thread",
        ".type rsc_thread, @function",
        ".p2align 4",
        "rsc_thread:",
        "movq %rdi, %r12",  # the shared page (user variables)
        "movq %rsi, %r13",  # glibc's struct rseq
    ]
    falls_through = True
    for ins in seg.instrs:
        aborts = [lab for lab in ins.labels if lab in sig_at]
        for lab in ins.labels:
            if lab not in sig_at:
                out += [f".globl {_sym(lab)}", f"{_sym(lab)}:"]
        if aborts:
            if falls_through:
                out.append(f"jmp {_sym(aborts[0])}")  # never execute the signature
            out += [".byte 0x0f, 0xb9, 0x3d", f".long {sig_at[aborts[0]]:#x}"]
            for lab in aborts:
                out += [f".globl {_sym(lab)}", f"{_sym(lab)}:"]
        out += [f"# {ins.text or ins.op}"] + _instr(ins, off, spin)
        falls_through = ins.op not in ("jmp", "exit")
    out += ["ud2", ".size rsc_thread, .-rsc_thread"]
    return "\n".join('\t"' + line.replace("\\", "\\\\").replace('"', '\\"') + '\\n"' for line in out)


def _instr(ins: Instr, off: dict[str, int], spin: int) -> list[str]:
    op, a = ins.op, ins.args
    if op == "nop":
        return ["nop"] if spin <= 0 else [f"movl ${spin}, %ecx", "1: decl %ecx", "jnz 1b"]
    if op == "jmp":
        return [f"jmp {_sym(a[0])}"]
    if op == "store":
        return [f"movq ${a[1]}, {off[a[0]]}(%r12)"]
    if op == "add":
        return [f"addq ${a[1]}, {off[a[0]]}(%r12)"]
    if op in ("beq", "bne"):
        if not isinstance(a[1], int):
            raise Unsupported(f"{_where(ins)}: {op} on {a[1]!r} is not generated")
        return [f"cmpq ${a[1]}, {off[a[0]]}(%r12)", f"{'je' if op == 'beq' else 'jne'} {_sym(a[2])}"]
    if op == "rseq_cs":
        if a[0] == "0":
            return ["movq $0, 8(%r13)"]
        return [f"leaq {_cs_sym(a[0])}(%rip), %rax", "movq %rax, 8(%r13)"]
    if op == "syscall":
        return _syscall(ins)
    if op == "exit":
        # tsc1: when the run ended, for the parent's window calibration
        return ["rdtsc", "movl %eax, 16(%r12)", "movl %edx, 20(%r12)",
                "movl $231, %eax", "xorl %edi, %edi", "syscall"]
    why = {
        "set_desc": "the next-syscall descriptor has no kernel counterpart (a proposal)",
        "sigreturn": "rt_sigreturn outside a handler frame",
        "assert": "assert has no machine counterpart; state the claim in [outcomes] instead",
    }.get(op, "not generated yet")
    raise Unsupported(f"{_where(ins)}: {op}: {why}")


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


# ---------------------------------------------------------------- handlers


def _handler_c(spec: Spec, sig: str, off: dict[str, int]) -> tuple[str, str]:
    """(function definition, installation statements) for one [handler.SIG]."""
    h = spec.handlers[sig]
    num = SIGNUM[sig]
    if h.action != "handler":
        disp = "SIG_IGN" if h.action == "ignore" else "SIG_DFL"
        return "", f"\tsignal({num}, {disp});"
    assert h.segment is not None
    body: list[str] = []
    instrs = h.segment.instrs
    for k, ins in enumerate(instrs):
        if ins.op == "sigreturn":
            if k != len(instrs) - 1:
                raise Unsupported(f"{_where(ins)}: handler code after sigreturn is not generated")
            break
        if ins.op == "nop":
            continue
        if ins.op == "store":
            body.append(f"\trsc_shared->v[{(off[ins.args[0]] - SHARED_V) // 8}] = {ins.args[1]};")
        elif ins.op == "add":
            body.append(f"\trsc_shared->v[{(off[ins.args[0]] - SHARED_V) // 8}] += {ins.args[1]};")
        elif ins.op == "syscall" and ins.args[0] in HANDLER_SYSCALLS:
            body.append(f"\trsc_sys0({SYSCALL_NR[ins.args[0]]}); /* {ins.args[0]} */")
        else:
            raise Unsupported(f"{_where(ins)}: handler code is generated for straight-line "
                              f"nop/store/add/syscall {'/'.join(HANDLER_SYSCALLS)}/sigreturn only")
    fn = f"rsc_handler_{sig}"
    flags = " | ".join(["SA_SIGINFO"] + [SA_FLAG_C[f] for f in h.flags])
    mask = "".join(f"\tsigaddset(&sa.sa_mask, {SIGNUM[m]});\n" for m in h.mask)
    define = (f"static void {fn}(int sig, siginfo_t *si, void *uc)\n{{\n\t(void)sig; (void)si; (void)uc;\n"
              + "\n".join(body) + "\n}\n")
    install = (f"\tmemset(&sa, 0, sizeof(sa));\n\tsa.sa_sigaction = {fn};\n\tsa.sa_flags = {flags};\n"
               f"\tsigemptyset(&sa.sa_mask);\n{mask}\tif (sigaction({num}, &sa, NULL)) _exit(99);")
    return define, install


# ----------------------------------------------------------------- program

_TEMPLATE = r"""/* Generated by rseqcheck (checker/cgen.py): one spec scenario, run on the
 * real kernel.  Usage: PROG RUNS SEED WINDOW_US (0: calibrate).
 * Prints "window TICKS US" then one line per run:
 *   run exit|signal|hung|error CODE NIVCSW V0 V1 ... */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <x86intrin.h>

#define NV @NV@
#define NVREAL @NVREAL@
#define NSIGS @NSIGS@
#define MAXSIG @MAXSIG@
#define AREA_FLAGS @AREA_FLAGS@u
#define READ_DELAY_US @READ_DELAY_US@
#define NOTIFY_TIMER @NOTIFY_TIMER@
#define NO_PREEMPT @NO_PREEMPT@

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

struct rsc_shared {          /* offsets used by the asm: tsc1 at 16, v at 24 */
	volatile int64_t ready;
	volatile uint64_t tsc0;
	volatile uint64_t tsc1;
	volatile int64_t v[NV];
	volatile int64_t prof_us;    /* CPU time until the notify-resume timer fires */
};
_Static_assert(offsetof(struct rsc_shared, v) == 24, "layout");

static struct rsc_shared *rsc_shared;
int rsc_pipe_rd = -1;
char rsc_buf[64];
struct timespec rsc_ts = { 0, @NANOSLEEP_NS@ };
void rsc_thread(struct rsc_shared *sh, volatile void *rseq_area) __attribute__((noreturn));

__asm__(
@ASM@
);

static inline long rsc_sys0(long nr)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

@HANDLERS@

static volatile void *rseq_area(void)
{
	char *tp;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp + __rseq_offset;
}

static int ncpu;

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void child(void)
{
	struct sigaction sa;
	(void)sa;
@INSTALL@
	if (AREA_FLAGS)
		((volatile uint32_t *)rseq_area())[4] = AREA_FLAGS;   /* struct rseq.flags */
	if (NO_PREEMPT) {    /* the spec has no preemption: avoid it where allowed (CAP_SYS_NICE) */
		struct sched_param sp = { .sched_priority = 1 };
		sched_setscheduler(0, SCHED_FIFO, &sp);
	}
	if (NOTIFY_TIMER) {  /* SIGPROF stays pending: its timer only raises task_work */
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGPROF);
		sigprocmask(SIG_BLOCK, &m, NULL);
	}
	__atomic_store_n(&rsc_shared->ready, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&rsc_shared->ready, __ATOMIC_ACQUIRE) != 2)
		__builtin_ia32_pause();
	if (NOTIFY_TIMER && rsc_shared->prof_us > 0) {
		struct itimerval it = { { 0, 0 }, { 0, rsc_shared->prof_us } };
		setitimer(ITIMER_PROF, &it, NULL);
	}
	rsc_shared->tsc0 = __rdtsc();
	rsc_thread(rsc_shared, rseq_area());
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

/* One run: returns the wait status; *hung when the child did not end. */
static int one_run(int nsend, uint64_t window, struct rusage *ru, int *hung, int *reaped_stop)
{
	int pfd[2], st = 0;
	pid_t pid;
	if (pipe(pfd)) { perror("pipe"); exit(98); }
	rsc_pipe_rd = pfd[0];
	rsc_shared->ready = 0;
	rsc_shared->tsc0 = rsc_shared->tsc1 = 0;
	for (int i = 0; i < NV; i++) rsc_shared->v[i] = 0;
	rsc_shared->prof_us = (NOTIFY_TIMER && nsend >= 0 && window) ? 1 + (int64_t)(rnd() % (uint64_t)(window / tpus + 1)) : 0;
	fflush(stdout);
	if (ncpu > 1)        /* the child is born on CPU 1, beside the parent, not after it */
		pin(1);
	pid = fork();
	if (pid < 0) { perror("fork"); exit(98); }
	if (pid > 0 && ncpu > 1)
		pin(0);
	if (pid == 0) {
		close(pfd[1]);
		child();
	}
	*hung = 0;
	*reaped_stop = 0;
	memset(ru, 0, sizeof(*ru));
	double t_start = now();
	while (!__atomic_load_n(&rsc_shared->ready, __ATOMIC_ACQUIRE)) {
		if (now() - t_start > 5) break;
	}
	uint64_t t0 = __rdtsc(), at[MAXSIG + 1];   /* the child starts now */
	__atomic_store_n(&rsc_shared->ready, 2, __ATOMIC_RELEASE);
	int kind[MAXSIG + 1];
	for (int k = 0; k < nsend; k++) {
		at[k] = window ? rnd() % window : 0;
		kind[k] = (int)(rnd() % (NSIGS ? NSIGS : 1));
	}
	for (int i = 1; i < nsend; i++)        /* sort the send times */
		for (int j = i; j > 0 && at[j] < at[j - 1]; j--) {
			uint64_t x = at[j]; at[j] = at[j - 1]; at[j - 1] = x;
			int y = kind[j]; kind[j] = kind[j - 1]; kind[j - 1] = y;
		}
	for (int k = 0; k < nsend && !*reaped_stop; k++) {
		while (__rdtsc() < t0 + at[k])
			__builtin_ia32_pause();
		kill(pid, sigs[kind[k]]);
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
	if (__rseq_size == 0) {
		printf("error glibc did not register rseq (glibc.pthread.rseq=0?)\n");
		return 3;
	}
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > 1)
		pin(0);
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
		int st = one_run(MAXSIG, window, &ru, &hung, &reaped_stop);
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
