"""The preset of the machine rseqcheck runs on (`--preset host`).

The kernel release from uname is mapped to the nearest preset at or below
it (model/rules.py PRESETS are named after kernel versions): 6.18.44 ->
linux-6.18, 6.12 -> linux-6.0, 7.0 -> linux-6.19.  The generated programs
are x86-64 asm, and a kernel without rseq (CONFIG_RSEQ=n: the syscall is
-ENOSYS) or older than every preset has nothing to compare, so those are
refused with one line saying what uname and the kernel said.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import re
from dataclasses import dataclass

from rseqcheck.model.rules import PRESETS

NR_RSEQ_X86_64 = 334


class HostRefused(Exception):
    """This machine cannot be compared with any preset (exit status 2)."""


@dataclass(frozen=True)
class HostPreset:
    preset: str
    release: str  # uname -r
    exact: bool  # the release's major.minor is the preset's own version

    def describe(self) -> str:
        how = "its own preset" if self.exact else "the nearest preset below it"
        return f"{self.preset} (uname -r {self.release}: {how})"


def preset_version(preset: str) -> tuple[int, int]:
    major, minor = preset.removeprefix("linux-").split(".")[:2]
    return int(major), int(minor)


def release_version(release: str) -> tuple[int, int] | None:
    """(major, minor) of a uname release such as 6.18.44-fc-v669."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def preset_for_release(release: str) -> tuple[str, bool] | None:
    """(preset, exact) of the newest preset not newer than `release`."""
    v = release_version(release)
    if v is None:
        return None
    below = [p for p in PRESETS if preset_version(p) <= v]
    if not below:
        return None
    best = max(below, key=preset_version)
    return best, preset_version(best) == v


def rseq_available() -> bool:
    """rseq(NULL, 0, 0, 0) is -EINVAL where the syscall exists (a NULL area
    is never accepted, kernel/rseq.c:sys_rseq) and -ENOSYS without it."""
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(ctypes.c_long(NR_RSEQ_X86_64), None, ctypes.c_uint32(0), ctypes.c_int(0), ctypes.c_uint32(0))
    return not (r == -1 and ctypes.get_errno() == errno.ENOSYS)


def host_preset(check_rseq: bool = True) -> HostPreset:
    """The preset for this machine, or HostRefused with what uname says."""
    u = platform.uname()
    shown = f"uname: {u.system} {u.release} {u.machine}"
    if u.system != "Linux" or u.machine != "x86_64":
        raise HostRefused(f"the generated programs are x86-64 Linux only ({shown})")
    found = preset_for_release(u.release)
    if found is None:
        raise HostRefused(f"kernel {u.release} is older than every preset (oldest: {PRESETS[0]}; {shown})")
    if check_rseq and not rseq_available():
        raise HostRefused(f"kernel {u.release} has no rseq system call (CONFIG_RSEQ=n: -ENOSYS; {shown})")
    return HostPreset(found[0], u.release, found[1])


__all__ = ["HostPreset", "HostRefused", "host_preset", "preset_for_release", "rseq_available"]
