"""Kernels to boot under QEMU (`rseqcheck kernels fetch`, `run --kernel`).

A kernel is fetched from the distribution's package mirror (Debian 12:
linux-image-6.1.0-N-amd64-unsigned, linux-image-6.12.N+deb12-amd64-unsigned),
unpacked with dpkg-deb and its uncompressed vmlinux cut out of the vmlinuz
(QEMU boots the ELF through its PVH entry, skipping the slow in-guest XZ
decompression of 6.1).  Everything lives in a cache outside the repo,
~/.cache/rseqcheck/kernels/<uname -r>/ (RSEQCHECK_CACHE moves it).  A
user-built bzImage or vmlinux is accepted by its path.

Each missing tool is a `MissingTool` with its own exit status, so a script
can tell which one to install.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

# (command, Debian package, exit status when missing)
TOOLS = {
    "apt-get": ("apt", 10),
    "dpkg-deb": ("dpkg", 11),
    "qemu-system-x86_64": ("qemu-system-x86", 12),
    "busybox": ("busybox-static", 13),
    "gcc": ("gcc", 14),
    "libc.a": ("libc6-dev", 15),  # gcc -static needs glibc's archive
}

# short name -> the package's name pattern on Debian 12 (bookworm and its
# security suite); the newest match is fetched
SERIES = {
    "6.1": re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64-unsigned$"),
    "6.12": re.compile(r"^linux-image-6\.12\.(\d+)\+deb12-amd64-unsigned$"),
    "6.1-rt": re.compile(r"^linux-image-6\.1\.0-(\d+)-rt-amd64-unsigned$"),
    "6.12-rt": re.compile(r"^linux-image-6\.12\.(\d+)\+deb12-rt-amd64-unsigned$"),
}


class MissingTool(Exception):
    def __init__(self, tool: str):
        pkg, status = TOOLS[tool]
        super().__init__(f"{tool} not found: install it with `apt-get install {pkg}` "
                         f"(or tools/install-kernels.sh)")
        self.tool, self.status = tool, status


class KernelError(Exception):
    """A kernel cannot be found or unpacked (exit status 2)."""


def cache_dir() -> Path:
    return Path(os.environ.get("RSEQCHECK_CACHE") or Path.home() / ".cache" / "rseqcheck") / "kernels"


def _libc_a() -> bool:
    r = subprocess.run(["gcc", "-print-file-name=libc.a"], capture_output=True, text=True)
    return r.returncode == 0 and os.path.isabs(r.stdout.strip())


def require(*tools: str) -> None:
    """MissingTool for the first of `tools` this machine lacks."""
    for t in tools:
        if t == "libc.a":
            if not _libc_a():
                raise MissingTool(t)
        elif shutil.which(t) is None:
            raise MissingTool(t)


@dataclass(frozen=True)
class Kernel:
    name: str  # as the user said it: 6.1, 6.12, a path
    image: Path  # vmlinux (ELF) or bzImage
    release: str = ""  # uname -r, when known before the boot
    package: str = ""  # the Debian package and its version

    def describe(self) -> str:
        what = f"{self.release} " if self.release else ""
        return f"{what}({self.package or self.image})"


def extract_vmlinux(bz: bytes) -> bytes | None:
    """The ELF inside a bzImage: the first compressed stream (XZ, gzip or
    zstd, as scripts/extract-vmlinux tries them) that unpacks to ELF."""
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gz"), (b"\x28\xb5\x2f\xfd", "zst")):
        at = bz.find(magic)
        while at >= 0:
            data = _unpack(bz[at:], kind)
            if data and data[:4] == b"\x7fELF":
                return data
            at = bz.find(magic, at + 1)
    return None


def _unpack(blob: bytes, kind: str) -> bytes | None:
    try:
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(blob)  # stops at the stream's end
        if kind == "gz":
            return zlib.decompressobj(wbits=31).decompress(blob)  # stops at the member's end
        if shutil.which("zstd") is None:
            return None
        r = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True)  # trailing bytes: an error after the frame
        return r.stdout or None
    except (lzma.LZMAError, zlib.error, OSError, EOFError):
        return None


def _newest(series: str) -> str:
    pat = SERIES[series]
    r = subprocess.run(["apt-cache", "pkgnames", "linux-image-"], capture_output=True, text=True)
    found = [(int(m.group(1)), n) for n in r.stdout.split() if (m := pat.match(n))]
    if not found:
        raise KernelError(f"no package for kernel {series} in the apt lists (run apt-get update; "
                          f"pattern {pat.pattern})")
    return max(found)[1]


def fetch(name: str, log=print) -> Kernel:
    """Download, unpack and cache kernel `name` (a SERIES key or an exact
    package name); a cached one is reused."""
    require("apt-get", "dpkg-deb")
    pkg = _newest(name) if name in SERIES else name
    if not pkg.startswith("linux-image-"):
        raise KernelError(f"unknown kernel {name!r} (known: {', '.join(SERIES)}, or a linux-image-* package)")
    debs = cache_dir().parent / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob(f"{_deb_glob(pkg)}_*.deb"))
    if not have:
        log(f"downloading {pkg}")
        r = subprocess.run(["apt-get", "download", "-q", pkg], cwd=debs, capture_output=True, text=True)
        if r.returncode != 0:
            raise KernelError(f"apt-get download {pkg} failed: {r.stderr.strip()[:300]}")
        have = sorted(debs.glob(f"{_deb_glob(pkg)}_*.deb"))
    deb = have[-1]
    for k in installed():  # this package unpacked before
        if json.loads((k.image.parent / "kernel.json").read_text()).get("deb") == deb.name:
            log(f"{name}: {k.describe()} in {k.image.parent} (cached)")
            return k
    version = deb.name.split("_")[1].replace("%2b", "+")
    with tempfile.TemporaryDirectory(prefix="rseqcheck-deb-") as tmp:
        r = subprocess.run(["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True)
        if r.returncode != 0:
            raise KernelError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()[:300]}")
        vmlinuz = sorted(Path(tmp, "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise KernelError(f"{deb.name} has no boot/vmlinuz-*")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        out = cache_dir() / release
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(vmlinuz[0], out / "vmlinuz")
        cfg = Path(tmp, "boot", f"config-{release}")
        if cfg.exists():
            shutil.copyfile(cfg, out / "config")
    elf = extract_vmlinux((out / "vmlinuz").read_bytes())
    if elf is not None:
        (out / "vmlinux").write_bytes(elf)
    meta = {"name": name, "package": pkg, "version": version, "release": release, "deb": deb.name}
    (out / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"{name}: {release} ({pkg} {version}) in {out}" + ("" if elf else " (no vmlinux: boots the bzImage)"))
    return _cached(out)


def _deb_glob(pkg: str) -> str:
    return pkg.replace("+", "?")  # apt-get download keeps '+' or writes %2b


def _cached(d: Path) -> Kernel:
    meta = json.loads((d / "kernel.json").read_text())
    image = d / "vmlinux" if (d / "vmlinux").exists() else d / "vmlinuz"
    return Kernel(meta["name"], image, meta["release"], f"{meta['package']} {meta['version']}")


def installed() -> list[Kernel]:
    root = cache_dir()
    return [_cached(d) for d in sorted(root.iterdir()) if (d / "kernel.json").exists()] if root.is_dir() else []


def find(name: str) -> Kernel:
    """A kernel by path (a bzImage or vmlinux the user built), by short name
    (6.1, 6.12: the newest cached one) or by its uname -r."""
    if "/" in name or Path(name).is_file():
        p = Path(name)
        if not p.is_file():
            raise KernelError(f"{name}: no such kernel image")
        head = p.read_bytes()[:0x210]
        if head[:4] != b"\x7fELF" and head[0x202:0x206] != b"HdrS":
            raise KernelError(f"{name}: neither an ELF vmlinux nor a bzImage (no HdrS at 0x202)")
        return Kernel(name, p)
    mine = installed()
    for k in reversed(mine):
        if name in (k.release, k.name):
            return k
    raise KernelError(f"kernel {name} is not installed (have: {', '.join(k.release for k in mine) or 'none'}); "
                      f"`rseqcheck kernels fetch {name}` fetches it")


__all__ = ["Kernel", "KernelError", "MissingTool", "SERIES", "TOOLS", "cache_dir", "extract_vmlinux",
           "fetch", "find", "installed", "require"]
