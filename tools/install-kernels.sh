#!/bin/sh
# Install what `rseqcheck run --kernels 6.1,6.12,host` needs on Debian 12:
# QEMU, a static busybox, cpio, gcc with glibc's libc.a (static programs),
# and the Debian 6.1 and 6.12 kernels (fetched into ~/.cache/rseqcheck/kernels
# with their uncompressed vmlinux; RSEQCHECK_CACHE moves the cache).
#
#   tools/install-kernels.sh [KERNEL...]     default: 6.1 6.12
#
# Run it as root (apt-get install) inside the project's venv (rseqcheck).
# Exit status: 0 done; the missing tool's own status otherwise (10 apt-get,
# 11 dpkg-deb, 12 qemu-system-x86_64, 13 busybox, 14 gcc, 15 libc.a,
# 16 rseqcheck: see checker/conformance/kernels.py TOOLS); 2 a kernel not found.
set -e
need() {  # need COMMAND PACKAGE STATUS
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "install-kernels: $1 not found (package $2)" >&2
		exit "$3"
	fi
}
need apt-get apt 10
need rseqcheck "rseqcheck (pip install -e . in the venv)" 16
if [ "$(id -u)" -eq 0 ]; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		qemu-system-x86 busybox-static cpio gcc libc6-dev
else
	echo "install-kernels: not root: skipping apt-get install" >&2
fi
need dpkg-deb dpkg 11
need qemu-system-x86_64 qemu-system-x86 12
need busybox busybox-static 13
need gcc gcc 14
[ "$#" -gt 0 ] || set -- 6.1 6.12
exec rseqcheck kernels fetch "$@"
