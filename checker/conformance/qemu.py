"""Run generated scenarios on another kernel, booted under QEMU.

All the specs of one kernel go into one boot: each program is linked
statically (glibc 2.36 registers rseq in a static program as in a dynamic
one), packed with a static busybox and a shell /init into an initramfs
(newc, written here), and the guest's /init runs them one after the other
and prints their output on the serial console, every line prefixed with
`@@ `, then powers off.  The host reads the console, cuts it per spec and
hands each part to checker/conformance/run.py:tally as a local run's stdout.

QEMU runs under `nice -n 19` with TCG (`-accel tcg,thread=multi -cpu
max`); KVM when /dev/kvm accepts the guest (`--accel kvm`).  `tsc=reliable`
keeps 6.1 on the TSC under TCG (it falls back to HPET otherwise).  The whole
boot has a time limit; a hung guest is killed with its process group and
the spec it was running is named in the report.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rseqcheck.checker.conformance.cgen import Program, generate
from rseqcheck.checker.conformance.kernels import Kernel, require
from rseqcheck.model.spec import Spec

MARK = "@@ "


class BootFailed(Exception):
    """The guest did not boot or broke off (exit status 2)."""


class GuestHung(Exception):
    """The guest did not power off within the time limit (exit status 3)."""

    def __init__(self, msg: str, running: str | None, console: str):
        super().__init__(msg)
        self.running, self.console = running, console


@dataclass
class Job:
    spec: Spec
    runs: int
    spin: int
    seed: int = 1
    window_us: float | None = None
    program: Program | None = None


@dataclass
class Boot:
    release: str  # the guest's uname -r
    version: str  # its uname -v (Debian: `... Debian 6.1.192-3 (...)`)
    ncpu: int
    outputs: dict[str, tuple[int, str]] = field(default_factory=dict)  # spec name -> (status, stdout)
    seconds: float = 0.0
    console: str = ""


def build_static(spec: Spec, spin: int, out: Path) -> Program:
    """The scenario's program, linked statically for the initramfs."""
    prog = generate(spec, spin=spin)
    src = out.with_suffix(".c")
    src.write_text(prog.source)
    r = subprocess.run(["gcc", "-O1", "-Wall", "-static", "-pthread", "-o", str(out), str(src)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BootFailed(f"gcc -static failed on the generated program of {spec.name}:\n{r.stderr[:2000]}")
    return prog


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 1) -> bytes:
    """One newc record (Documentation/driver-api/early-userspace/buffer-format.rst)."""
    nb = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    return head + nb + _pad(len(head) + len(nb)) + data + _pad(len(data))


def _pad(n: int) -> bytes:
    """newc aligns names and data to 4 bytes."""
    return b"\0" * (-n % 4)


def initramfs(files: dict[str, bytes], execs: set[str]) -> bytes:
    """A newc archive: directories, /dev/console, and `files` (names in
    `execs` mode 0755)."""
    out = [_cpio_entry(d, stat.S_IFDIR | 0o755, ino=i + 1)
           for i, d in enumerate(("bin", "dev", "proc", "sys", "tmp"))]
    out.append(_cpio_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1), ino=10))
    for i, (name, data) in enumerate(sorted(files.items())):
        mode = 0o755 if name in execs else 0o644
        out.append(_cpio_entry(name, stat.S_IFREG | mode, data, ino=100 + i))
    out.append(_cpio_entry("TRAILER!!!", 0, ino=0))
    return b"".join(out)


# A spec's file name becomes a file in the guest and a word of its /init
# script: only names that are both, harmlessly (specs come from strangers).
GUEST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\Z")


def guest_name_problem(spec: Spec, taken: set[str]) -> str | None:
    """Why `spec` cannot run in a guest under its name (None: it can)."""
    if not GUEST_NAME.match(spec.name):
        return f"its file name {spec.name!r} is not a plain name (letters, digits, _ . -) for the guest"
    if spec.name in taken:
        return f"another spec in this boot is also named {spec.name!r}"
    return None


def init_script(jobs: list[Job]) -> str:
    """/init: mount, say which kernel this is, run every job, power off."""
    bb = "/bin/busybox"
    lines = [
        f"#!{bb} sh",
        f"{bb} mount -t proc proc /proc",
        f"{bb} mount -t sysfs sys /sys",
        f"{bb} mount -t tmpfs tmp /tmp",
        f'echo "{MARK}kernel $({bb} uname -r)"',
        f'echo "{MARK}version $({bb} uname -v)"',
        f'echo "{MARK}ncpu $({bb} nproc)"',
    ]
    for j in jobs:
        assert j.program is not None and GUEST_NAME.match(j.spec.name)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(j.program.env.items()))
        win = str(j.window_us) if j.window_us else "0"
        name = j.spec.name  # GUEST_NAME: nothing in it that the shell would read
        lines += [
            f'echo "{MARK}begin {name}"',
            f"cd /tmp && {bb} env {env} /bin/{name} {j.runs} {j.seed} {win} > /tmp/out 2>&1",
            "s=$?",
            f"{bb} sed 's/^/{MARK}/' /tmp/out",
            f'echo "{MARK}end {name} $s"',
        ]
    lines += [f'echo "{MARK}done"', f"{bb} poweroff -f", ""]
    return "\n".join(lines)


def qemu_command(kernel: Kernel, initrd: Path, smp: int, accel: str, memory: str = "512M") -> list[str]:
    qemu = os.environ.get("RSEQCHECK_QEMU", "qemu-system-x86_64")
    acc = ["-accel", "tcg,thread=multi", "-cpu", "max"] if accel == "tcg" else ["-accel", "kvm", "-cpu", "host"]
    return ["nice", "-n", "19", qemu, *acc, "-m", memory, "-smp", str(smp),
            "-kernel", str(kernel.image), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet loglevel=1 tsc=reliable panic=-1 rdinit=/init",
            "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-nodefaults"]


def boot(kernel: Kernel, jobs: list[Job], smp: int = 2, accel: str = "tcg", timeout: float = 600.0) -> Boot:
    """Build every job's program, boot `kernel` once and run them all."""
    require("gcc", "libc.a", "busybox")
    if "RSEQCHECK_QEMU" not in os.environ:
        require("qemu-system-x86_64")
    busybox = Path(subprocess.run(["sh", "-c", "command -v busybox"], capture_output=True,
                                  text=True).stdout.strip()).read_bytes()
    if b"ld-linux" in busybox[:4096]:  # PT_INTERP: a dynamic busybox cannot run in the bare initramfs
        raise BootFailed("busybox is dynamically linked: install busybox-static")
    with tempfile.TemporaryDirectory(prefix="rseqcheck-qemu-") as tmp:
        files: dict[str, bytes] = {"bin/busybox": busybox}
        for j in jobs:
            exe = Path(tmp, j.spec.name)
            j.program = build_static(j.spec, j.spin, exe)
            files[f"bin/{j.spec.name}"] = exe.read_bytes()
        files["init"] = init_script(jobs).encode()
        initrd = Path(tmp, "initramfs.cpio")
        initrd.write_bytes(initramfs(files, set(files)))
        return _boot(qemu_command(kernel, initrd, smp, accel), timeout)


def _boot(cmd: list[str], timeout: float) -> Boot:
    """Run QEMU, read the console; kill its whole process group on timeout."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.seek(0)
            text = log.read().decode(errors="replace")
            running = _running(text)
            where = f" while running {running}" if running else " (before the first spec started)"
            raise GuestHung(f"the guest did not finish within {timeout:g} s{where}; QEMU killed",
                            running, text) from None
        log.seek(0)
        text = log.read().decode(errors="replace")
    b = parse_console(text)
    b.seconds = time.monotonic() - t0
    if b.release == "" or "done" not in _marked(text):
        tail = "\n".join(text.replace("\r", "").splitlines()[-15:])
        raise BootFailed(f"the guest stopped before finishing (QEMU status {proc.returncode}); "
                         f"console tail:\n{tail}")
    return b


def _marked(text: str) -> list[str]:
    return [ln[len(MARK):] for ln in text.replace("\r", "").splitlines() if ln.startswith(MARK)]


def _running(text: str) -> str | None:
    cur = None
    for ln in _marked(text):
        if ln.startswith("begin "):
            cur = ln.split()[1]
        elif ln.startswith("end "):
            cur = None
    return cur


def parse_console(text: str) -> Boot:
    b = Boot("", "", 0, console=text)
    cur: str | None = None
    buf: list[str] = []
    for ln in _marked(text):
        if cur is not None:
            if ln.startswith(f"end {cur} "):
                b.outputs[cur] = (int(ln.split()[2]), "\n".join(buf) + "\n")
                cur, buf = None, []
            else:
                buf.append(ln)
        elif ln.startswith("kernel "):
            b.release = ln[7:].strip()
        elif ln.startswith("version "):
            b.version = ln[8:].strip()
        elif ln.startswith("ncpu "):
            b.ncpu = int(ln.split()[1])
        elif ln.startswith("begin "):
            cur = ln.split()[1]
    return b


__all__ = ["Boot", "BootFailed", "GuestHung", "Job", "boot", "initramfs", "init_script", "parse_console",
           "qemu_command"]
