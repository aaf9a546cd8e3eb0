"""Reading an input file (a spec, a trace) without trusting it: only a
regular file is read (not a FIFO, which would block, nor a device such as
/dev/zero, which never ends), and only up to a size cap."""

from __future__ import annotations

import errno
import os
import stat

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: the largest bundled spec is about 5 KiB
MAX_TRACE_BYTES = 64 << 20  # 64 MiB


class InputError(OSError):
    """The file cannot be read as an input; str(): the reason, one line."""


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, or
    InputError with a one-line reason."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would wait forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(e.errno, _why(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket" \
                if stat.S_ISSOCK(st.st_mode) else "not a regular file"
            raise InputError(errno.EINVAL, f"not a regular file ({kind})")
        if st.st_size > limit:
            raise InputError(errno.EFBIG, f"too large ({st.st_size:,} bytes; at most {limit:,})")
        chunks = []
        left = limit + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        data = b"".join(chunks)
        if len(data) > limit:  # it grew while being read
            raise InputError(errno.EFBIG, f"too large (more than {limit:,} bytes)")
        return data
    except InputError:
        raise
    except OSError as e:
        raise InputError(e.errno, _why(e)) from None
    finally:
        os.close(fd)


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "cannot read: a symbolic link loop"
    return f"cannot read: {e.strerror or e}"
