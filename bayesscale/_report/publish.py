"""Publishing a report directory: all of it at once, or none of it.

:func:`publish` writes every file into a fresh temporary directory beside
the target, then swaps it into place in one atomic step (Linux
``renameat2(RENAME_EXCHANGE)``, else two renames), with the permissions the
umask gives.  :func:`check_out` refuses a target that holds anything a
report did not write, since the whole directory is replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..posterior import _umask
from .figures import FIG_DIR

__all__ = ["FILES", "check_out", "publish", "clean_leftovers"]

#: The report's pages, by format.
FILES = {"html": "report.html", "markdown": "report.md", "json": "report.json"}


def _foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that an earlier report did not write."""
    ours = set(FILES.values())
    foreign = []
    for entry in sorted(os.listdir(out)):
        p = out / entry
        if entry in ours and p.is_file() and not p.is_symlink():
            continue
        if entry == FIG_DIR and p.is_dir() and not p.is_symlink() and all(
                f.endswith(".png") and (p / f).is_file() for f in os.listdir(p)):
            continue
        foreign.append(entry)
    return foreign


def check_out(out) -> Path:
    """The report directory ``out`` as a Path, or a ValueError saying why it cannot be used.

    It must be new, empty, or hold only an earlier report's files (it is
    replaced as a whole; see :func:`bayesscale.report`).
    """
    if out is None or (isinstance(out, str) and not out.strip()):
        raise ValueError("out must name the directory to write the report into")
    try:
        p = Path(os.fspath(out))
    except TypeError:
        raise ValueError(f"out must be a directory path, got {type(out).__name__}") from None
    if p.exists() and not p.is_dir():
        raise ValueError(f"out={str(p)!r} exists and is not a directory; the report is a directory of files")
    if p.is_dir():
        foreign = _foreign_entries(p)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ValueError(f"out={str(p)!r} holds files that are not part of a report ({shown}). The report "
                             "replaces its directory as a whole, so give a new or empty directory, or one an "
                             "earlier report wrote.")
    return p


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_leftovers(out: Path) -> None:
    """Remove temporary siblings of ``out`` left by a killed run (``.NAME.PID-*.tmp`` / ``.old``).

    A leftover whose process still runs is left alone; older names without
    a process id (from earlier versions) are removed.  When ``out`` itself
    is missing but a complete old copy is left (a run killed between the
    two renames of the fallback swap), the old copy is put back first.
    """
    parent = out.parent
    pat = re.compile(re.escape(f".{out.name}.") + r"(?:(\d+)-)?[^/]*\.(tmp|old)$")
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in sorted(entries):
        m = pat.fullmatch(entry)
        if not m or (m.group(1) and int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1)))):
            continue
        p = parent / entry
        if m.group(2) == "old" and not out.exists() and p.is_dir():
            os.rename(p, out)
            continue
        shutil.rmtree(p, ignore_errors=True)


def publish(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) as the directory ``out``, all at once.

    Everything is written (and synced) into a fresh temporary directory
    beside ``out`` first; a failure there removes it and leaves ``out``
    untouched.  A new ``out`` is then renamed into place; an existing one
    (an earlier report: :func:`check_out` refused anything else) is swapped
    with it in one atomic step where the system allows (Linux), else by two
    renames, and the old copy is removed.  A reader, or a run killed at any
    moment, sees the old report or the new one, never a mix; leftovers of a
    killed run are cleaned up by the next.  The whole directory is replaced,
    so files the new report lacks (a figure it no longer draws) are gone.
    The directory and its files get the permissions the umask gives.
    """
    out = Path(out).absolute()
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    umask = _umask()
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.{os.getpid()}-", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        os.chmod(tmp, 0o777 & ~umask)
        (tmp / FIG_DIR).mkdir()
        for rel, data in files.items():
            with open(tmp / rel, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if not out.exists():
            os.rename(tmp, out)
            return
        if _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old report
            return
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
