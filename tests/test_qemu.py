"""Conformance on other kernels: fetching kernels, the initramfs, the QEMU
boot and its time limit, --preset auto by exact version, and the runner's
SCHED_FIFO start (checker/conformance/kernels.py, qemu.py, backports.py, cli_kernels.py).

The boots need qemu-system-x86_64, a static busybox, glibc's libc.a and
the Debian kernels in the cache (`rseqcheck kernels fetch 6.1 6.12`); they
are skipped with that reason elsewhere.  The full matrix is slow-marked."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.cli.kernels import Cell, markdown_table
from rseqcheck.checker.conformance import kernels, qemu
from rseqcheck.checker.conformance.backports import CHANGES, auto_preset, exact_version
from rseqcheck.checker.conformance.run import parse_run_line
from rseqcheck.checker.outcomes import Outcome
from rseqcheck.model.rules import RULES
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "specs" / "conformance"
DEB61 = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-01)"
DEB612 = "#1 SMP PREEMPT_DYNAMIC Debian 6.12.118-1~deb12u1 (2026-11-28)"


# --- --preset auto: exact version, stable backports -------------------------

def test_exact_version_reads_debian_uname_v():
    assert exact_version("6.1.0-57-amd64", DEB61) == (6, 1, 192)
    assert exact_version("6.12.118+deb12-amd64", DEB612) == (6, 12, 118)
    assert exact_version("6.18.44-fc-v1147") == (6, 18, 44)
    assert exact_version("7.0") == (7, 0, 0)
    assert exact_version("weird") is None


def test_auto_preset_debian_kernels_carry_their_backports():
    a = auto_preset("6.1.0-57-amd64", DEB61)
    assert a is not None and a.preset == "linux-6.0"
    assert a.rules == {"rseq.register_clears_cs": "yes", "rseq.event_mask_guard": "irq"}
    b = auto_preset("6.12.118+deb12-amd64", DEB612)
    assert b is not None and b.preset == "linux-6.0"
    assert b.rules == {"rseq.register_clears_cs": "yes", "rseq.event_mask_guard": "irq",
                       "rseq.len_check": "extensible"}


def test_auto_preset_sublevel_boundaries():
    # 6.1.146 is the first 6.1.y with the registration fix, 6.1.157 the first with the IPI guard
    assert auto_preset("6.1.145").rules == {}
    assert auto_preset("6.1.146").rules == {"rseq.register_clears_cs": "yes"}
    assert auto_preset("6.1.157").rules == {"rseq.register_clears_cs": "yes", "rseq.event_mask_guard": "irq"}
    assert auto_preset("6.12.38").rules == {"rseq.len_check": "extensible"}
    assert auto_preset("6.2.16").rules == {}  # no stable backport on 6.2.y in the table
    # a kernel whose own preset has every change needs nothing more
    assert auto_preset("6.18.44-fc").preset == "linux-6.18" and auto_preset("6.18.44-fc").rules == {}
    assert auto_preset("4.1.0") is None


def test_every_change_names_a_real_rule_choice():
    for c in CHANGES:
        assert c.choice in RULES[c.rule].choices, c
        assert c.evidence


# --- kernels: images, tools, cache -----------------------------------------

def test_extract_vmlinux_finds_the_elf_after_a_decoy():
    elf = b"\x7fELF" + bytes(range(256)) * 40
    decoy = lzma.compress(b"not an elf")  # an XZ stream that does not unpack to ELF comes first
    bz = b"MZ" + b"\0" * 0x200 + decoy + b"pad" + lzma.compress(elf) + b"\0trailing junk"
    assert kernels.extract_vmlinux(bz) == elf
    assert kernels.extract_vmlinux(b"MZ" + decoy) is None


def test_missing_tools_have_their_own_status(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    seen = set()
    for tool in ("apt-get", "dpkg-deb", "qemu-system-x86_64", "busybox"):
        with pytest.raises(kernels.MissingTool) as e:
            kernels.require(tool)
        assert tool in str(e.value) and kernels.TOOLS[tool][0] in str(e.value)
        seen.add(e.value.status)
    assert seen == {10, 11, 12, 13}
    r = CliRunner().invoke(main, ["kernels", "fetch", "6.1"])
    assert r.exit_code == 10 and "apt-get not found" in r.output


def test_find_accepts_a_user_built_bzimage_and_refuses_other_files(tmp_path, monkeypatch):
    monkeypatch.setenv("RSEQCHECK_CACHE", str(tmp_path / "cache"))
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 64)
    k = kernels.find(str(bz))
    assert k.image == bz and k.release == ""
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello" * 200)
    with pytest.raises(kernels.KernelError, match="neither an ELF vmlinux nor a bzImage"):
        kernels.find(str(junk))
    with pytest.raises(kernels.KernelError, match="kernels fetch 6.1"):
        kernels.find("6.1")  # an empty cache


# --- the initramfs, /init and the console ----------------------------------

@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_initramfs_is_a_newc_archive_cpio_reads(tmp_path):
    blob = qemu.initramfs({"init": b"#!/bin/busybox sh\n", "bin/prog": b"\x7fELF" + b"x" * 5}, {"init"})
    r = subprocess.run(["cpio", "-itv"], input=blob, capture_output=True)
    assert r.returncode == 0, r.stderr
    listing = r.stdout.decode().splitlines()
    names = [ln.split()[-1] for ln in listing]
    assert names == ["bin", "dev", "proc", "sys", "tmp", "dev/console", "bin/prog", "init"]
    modes = {ln.split()[-1]: ln.split()[0] for ln in listing}
    assert modes["init"] == "-rwxr-xr-x" and modes["bin/prog"] == "-rw-r--r--"
    assert modes["dev/console"].startswith("crw")


def test_console_is_cut_per_spec_despite_kernel_lines():
    text = ("[    0.000000] Linux version 6.12\r\n@@ kernel 6.12.118+deb12-amd64\r\n"
            f"@@ version {DEB612}\r\n@@ ncpu 2\r\n@@ begin p01\r\n@@ window 100 5.0\r\n"
            "[    3.1] random: crng init done\r\n@@ run exit 0 0 1 1\r\n@@ end p01 0\r\n"
            "@@ begin p02\r\n@@ end p02 3\r\n@@ done\r\n")
    b = qemu.parse_console(text)
    assert (b.release, b.ncpu) == ("6.12.118+deb12-amd64", 2)
    assert b.version == DEB612
    assert b.outputs == {"p01": (0, "window 100 5.0\nrun exit 0 0 1 1\n"), "p02": (3, "\n")}


def test_init_script_runs_every_job_with_its_environment():
    spec = load_spec(str(CONF / "p06t_register_own.toml"))
    job = qemu.Job(spec, 7, 0, seed=3)
    from rseqcheck.checker.conformance.cgen import generate
    job.program = generate(spec, spin=0)
    s = qemu.init_script([job])
    assert "GLIBC_TUNABLES=glibc.pthread.rseq=0 /bin/p06t_register_own 7 3 0" in s
    assert s.index("begin p06t_register_own") < s.index("end p06t_register_own") < s.index("poweroff -f")


# --- the time limit: a hung guest is killed with everything it started -------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_hung_guest_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "pids"
    fake = tmp_path / "fake-qemu"  # prints the start of a boot, then hangs; so does its child
    fake.write_text(f"#!/bin/sh\nsleep 600 & echo $$ $! > {pidfile}\n"
                    "echo '@@ kernel 6.1.0-57-amd64'\necho '@@ begin p01_signal_in_cs'\nsleep 600\n")
    fake.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(qemu.GuestHung) as e:
        qemu._boot([str(fake)], timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert e.value.running == "p01_signal_in_cs" and "within 1.5 s while running p01_signal_in_cs" in str(e.value)
    pids = [int(x) for x in pidfile.read_text().split()]
    time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def test_guest_that_stops_early_is_a_boot_failure(tmp_path):
    fake = tmp_path / "fake-qemu"
    fake.write_text("#!/bin/sh\necho 'Kernel panic - not syncing: VFS'\nexit 0\n")
    fake.chmod(0o755)
    with pytest.raises(qemu.BootFailed, match="Kernel panic"):
        qemu._boot([str(fake)], timeout=30)


def test_markdown_table_marks_forbidden_outcomes():
    from collections import Counter

    from rseqcheck.checker.conformance.run import RunResult
    from rseqcheck.checker.outcomes import OutcomeSet
    spec = load_spec(str(CONF / "p03a_syscall_last.toml"))
    ok = Outcome("exit", (("a", 0), ("c", 1)))
    bad = Outcome("exit", (("a", 1), ("c", 1)))
    model = OutcomeSet({ok: 1}, 1, 1, 0.0, True, "")
    res = RunResult(5, Counter({ok: 4, bad: 1}), Counter(), Counter(), 0, [], 1.0, 1, model, None, "6.1.0-57-amd64")
    t = markdown_table([Cell("6.1", spec, res, 1)], ["6.1"])
    assert t.splitlines()[0] == "| spec | 6.1.0-57-amd64 |"
    assert t.splitlines()[2] == "| p03a_syscall_last | 4 `exit; a=0 c=1`, !1 `exit; a=1 c=1` |"


# --- the runner race: a SCHED_FIFO child must not start before the parent left its CPU

def _fifo_ok() -> str | None:
    if sys.platform != "linux" or os.cpu_count() is None or os.cpu_count() < 2:
        return "needs 2 CPUs"
    if os.geteuid() != 0:
        return "SCHED_FIFO needs CAP_SYS_NICE"
    try:
        if int(Path("/proc/sys/kernel/sched_rt_runtime_us").read_text()) < 0:
            return "RT throttling is off: the race would hang, not slow down"
    except OSError:
        return "no /proc/sys/kernel/sched_rt_runtime_us"
    return None if shutil.which("gcc") else "gcc not found"


@pytest.mark.skipif(_fifo_ok() is not None, reason=str(_fifo_ok()))
def test_fifo_child_waits_for_the_parent_to_move(tmp_path):
    """The parent dawdles 20 ms on the child's CPU before moving (as on a
    loaded machine).  Before the fix the child turned SCHED_FIFO at once and
    spun there, so the parent ran again only when RT throttling let it: about
    0.8 s a run (21 s for these 26 runs on the 6.18 host).  Now the child
    sleeps until the parent has left, and each run costs the 20 ms lag."""
    spec = CONF / "p06t_register_own.toml"  # no preemption: the child runs SCHED_FIFO
    src = tmp_path / "p.c"
    r = CliRunner().invoke(main, ["run", str(spec), "--emit-c", str(src)])
    assert r.exit_code == 0, r.output
    assert "#define NO_PREEMPT 1" in src.read_text()
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-O1", "-DRSC_PARENT_LAG_US=20000", "-o", str(exe), str(src)], check=True,
                   capture_output=True)
    t0 = time.monotonic()
    p = subprocess.run([str(exe), "10", "1", "0"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GLIBC_TUNABLES": "glibc.pthread.rseq=0"})
    took = time.monotonic() - t0
    runs = [ln for ln in p.stdout.splitlines() if ln.startswith("run ")]
    assert len(runs) == 10 and all(parse_run_line(ln, ["fail"])[2] == "exit" for ln in runs), p.stdout
    assert took < 6, f"26 runs took {took:.1f} s: the parent waited for RT throttling"


# --- real boots (skipped without QEMU and the fetched kernels) ---------------

def _boot_ready(name: str) -> str | None:
    try:
        kernels.require("qemu-system-x86_64", "busybox", "gcc", "libc.a")
        kernels.find(name)
    except (kernels.MissingTool, kernels.KernelError) as e:
        return f"{e} (install: tools/install-kernels.sh)"
    return None


@pytest.mark.skipif(_boot_ready("6.12") is not None, reason=str(_boot_ready("6.12")))
def test_one_boot_runs_a_handful_of_specs_on_6_12(tmp_path):
    """The CI boot: three specs x 20 runs in one 6.12 boot, compared with
    the preset --preset auto picks for 6.12.118 (p06t needs the backported
    registration fix)."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for n in ("p03a_syscall_last", "p04a_syscall_middle", "p06t_register_own"):
        shutil.copy(CONF / f"{n}.toml", specs)
    md = tmp_path / "t.md"
    r = CliRunner().invoke(main, ["run", str(specs), "--kernel", "6.12", "--runs", "20", "--smp", "2",
                                  "--spin", "20000", "--markdown", str(md)])
    assert r.exit_code == 0, r.output
    assert "Linux 6.12.118+deb12-amd64" in r.output
    assert "rseq.register_clears_cs=yes" in r.output
    assert r.output.count("Ok: every observed outcome is allowed") == 3
    rows = md.read_text().splitlines()
    assert rows[0] == "| spec | 6.12.118+deb12-amd64 |" and len(rows) == 5
    assert "| p06t_register_own | " in md.read_text()


@pytest.mark.skipif(_boot_ready("6.1") is not None, reason=str(_boot_ready("6.1")))
def test_real_guest_over_its_time_limit_is_killed(tmp_path):
    spec = CONF / "p03a_syscall_last.toml"
    t0 = time.monotonic()
    # 100,000 runs: far more than any boot and run fits in 2 s, however idle the machine (5 runs
    # once finished within the limit on a quiet machine)
    r = CliRunner().invoke(main, ["run", str(spec), "--kernel", "6.1", "--runs", "100000", "--smp", "1",
                                  "--timeout", "2"])
    assert r.exit_code == 3, r.output
    assert "did not finish within 2 s" in r.output and "QEMU killed" in r.output
    assert time.monotonic() - t0 < 60
    ps = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "a QEMU this test started is still running"


@pytest.mark.slow
@pytest.mark.skipif(any(_boot_ready(k) for k in ("6.1", "6.12")), reason="QEMU or the Debian kernels missing")
def test_full_matrix_on_6_1_and_6_12(tmp_path):
    """Every conformance spec on both Debian kernels, 200 runs each."""
    r = CliRunner().invoke(main, ["run", str(CONF), "--kernels", "6.1,6.12", "--runs", "200", "--smp", "2"])
    assert r.exit_code in (0, 3), r.output  # 3: a run that hung is reported, never a forbidden outcome
    assert "FORBIDDEN" not in r.output


def test_run_refuses_unknown_kernel_and_host_preset_for_a_guest(tmp_path, monkeypatch):
    monkeypatch.setenv("RSEQCHECK_CACHE", str(tmp_path))
    spec = str(CONF / "p03a_syscall_last.toml")
    r = CliRunner().invoke(main, ["run", spec, "--kernel", "9.9"])
    assert r.exit_code == 2 and "kernel 9.9 is not installed" in r.output
    r = CliRunner().invoke(main, ["run", spec, "--kernel", "6.1", "--preset", "host"])
    assert r.exit_code == 2 and "--preset host is this machine's preset" in r.output


def _host_runs() -> str | None:
    from rseqcheck.checker.conformance.run import Refused, machine_preset
    try:
        return None if machine_preset() == "linux-6.18" and shutil.which("gcc") else "not a 6.18 host with gcc"
    except Refused as e:
        return str(e)


@pytest.mark.skipif(_host_runs() is not None, reason=str(_host_runs()))
def test_folder_on_host_uses_auto_preset_and_summarises(tmp_path):
    for n in ("p03a_syscall_last", "p03c_no_restart_eintr"):
        shutil.copy(CONF / f"{n}.toml", tmp_path)
    r = CliRunner().invoke(main, ["run", str(tmp_path), "--runs", "5", "--spin", "2000"])
    assert r.exit_code == 0, r.output
    assert "== kernel host:" in r.output and "preset linux-6.18 (kernel 6.18." in r.output
    assert "  p03a_syscall_last: host ok\n" in r.output and "  p03c_no_restart_eintr: host ok\n" in r.output


def test_a_hostile_spec_file_name_never_reaches_the_guest_shell(tmp_path):
    """Spec files come from strangers: a name that is not a plain word is
    refused before the boot (and could not reach /init: it asserts)."""
    src = (CONF / "p03a_syscall_last.toml").read_text()
    bad = tmp_path / "x$(touch pwned);y.toml"
    bad.write_text(src)
    spec = load_spec(str(bad))
    assert "not a plain name" in qemu.guest_name_problem(spec, set())
    good = load_spec(str(CONF / "p03a_syscall_last.toml"))
    assert qemu.guest_name_problem(good, set()) is None
    assert "also named" in qemu.guest_name_problem(good, {"p03a_syscall_last"})
    job = qemu.Job(spec, 1, 0, seed=1)
    from rseqcheck.checker.conformance.cgen import generate
    job.program = generate(good, spin=0)
    with pytest.raises(AssertionError):
        qemu.init_script([job])
