"""The preset of a kernel by its exact version, stable backports included
(`--preset auto`).

A preset (model/rules.py) fixes every rule as a mainline release does; a
stable or distribution kernel is its major.minor's nearest preset plus
the rule changes it carries: those merged into mainline at or below its
major.minor, and the fixes backported to its stable branch at or below
its sublevel.  Each entry says where the change is and where the backport
was read, so that a new kernel is one more line here.

The exact version is the one the kernel reports: `uname -r` for upstream
and most distributions (6.18.44-...), or Debian's `uname -v` (`... Debian
6.1.192-3 (...)`: Debian's uname -r is 6.1.0-57-amd64, the ABI name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rseqcheck.checker.conformance.host import preset_for_release
from rseqcheck.model.rules import RULES

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Change:
    rule: str
    choice: str
    mainline: tuple[int, int]  # the first release with it
    stable: dict[tuple[int, int], int]  # stable branch -> first sublevel with the backport
    evidence: str


CHANGES = (
    Change("rseq.len_check", "extensible", (6, 3), {},
           "kernel/rseq.c:sys_rseq, 'rseq: Introduce extensible rseq ABI' (ee3e3ac05c26, 6.3): "
           "6.12 accepts length >= the feature size (probe p06 on 6.12.118)"),
    Change("rseq.register_clears_cs", "yes", (6, 15),
           {(6, 14): 9, (6, 12): 39, (6, 6): 99, (6, 1): 146, (5, 15): 189, (5, 10): 240},
           "kernel/rseq.c:sys_rseq, 'rseq: Fix segfault on registration when rseq_cs is "
           "non-zero' (fd881d0a085f, 6.15; CVE-2025-38067); stable shortlogs: 6.12.39 "
           "(f004f58d18a2), 6.6.99 (eaf112069a90), 5.15.189 (3e4028ef31b6), 6.14 review "
           "patch 261/783 of 2025-05-27"),
    Change("rseq.event_mask_guard", "irq", (6, 18), {(6, 1): 157, (6, 12): 53},
           "kernel/rseq.c:rseq_need_restart, 'rseq: Protect event mask against membarrier "
           "IPI' (6eb350a22331); 6.1.157-rc1 shortlog (2025-10-17); 6.12: the same October "
           "2025 stable batch (6.12.53, derived from the batch, not read in a 6.12 shortlog)"),
)


def exact_version(release: str, uname_v: str = "") -> Version | None:
    """(major, minor, sublevel) of a running kernel: Debian's `uname -v`
    names the upstream sublevel, else the release's own."""
    m = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", uname_v) or re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def carries(change: Change, v: Version) -> bool:
    if v[:2] >= change.mainline:
        return True
    first = change.stable.get(v[:2])
    return first is not None and v[2] >= first


@dataclass(frozen=True)
class AutoPreset:
    preset: str
    rules: dict[str, str]  # the changes this kernel carries beyond the preset
    version: Version
    why: dict[str, str]  # rule -> evidence

    def describe(self) -> str:
        v = ".".join(map(str, self.version))
        extra = "".join(f" {k}={c}" for k, c in sorted(self.rules.items()))
        return f"{self.preset}{' +' + extra if extra else ''} (kernel {v})"


def auto_preset(release: str, uname_v: str = "") -> AutoPreset | None:
    """The nearest preset at or below the kernel, plus its backports; None
    for a kernel older than every preset."""
    v = exact_version(release, uname_v)
    if v is None:
        return None
    found = preset_for_release(f"{v[0]}.{v[1]}")
    if found is None:
        return None
    preset = found[0]
    rules: dict[str, str] = {}
    why: dict[str, str] = {}
    for c in CHANGES:
        if carries(c, v) and RULES[c.rule].default(preset) != c.choice:
            rules[c.rule], why[c.rule] = c.choice, c.evidence
    return AutoPreset(preset, rules, v, why)


__all__ = ["AutoPreset", "CHANGES", "Change", "auto_preset", "carries", "exact_version"]
