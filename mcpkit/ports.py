"""Taking a TCP port for `mcpkit dev` before anything else happens, and naming whoever holds it.

The socket is bound here and handed to uvicorn, so "ready" is printed only for a port this
process really listens on, and a busy port stops start-up before any state or discovery file is
touched.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from pathlib import Path


class PortBusyError(OSError):
    """The port is taken; the message names the holder (when it can be found) and how to pick another."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or `PortBusyError` with a message a person can act on."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a port left in TIME_WAIT by the previous run is free to reuse, a listening one is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        holder = port_holder(port)
        who = f"{holder} holds it" if holder else "another process holds it"
        raise PortBusyError(
            f"port {port} on {host} is in use ({who}); pick another: .venv/bin/mcpkit dev --port {port + 1} "
            f"(or PORT={port + 1} make dev)"
        ) from exc
    sock.set_inheritable(False)
    return sock


def port_holder(port: int) -> str | None:
    """'pid 1234 (python -m mcpkit dev)' for the process listening on `port`, if it can be found."""
    pid = _holder_from_proc(port) or _holder_from_lsof(port)
    if pid is None:
        return None
    return f"pid {pid} ({_command(pid)})" if _command(pid) else f"pid {pid}"


def _holder_from_proc(port: int) -> int | None:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # st 0A is LISTEN; the local address is HEXIP:HEXPORT.
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) in targets:
                        return int(entry.name)
    return None


def _holder_from_lsof(port: int) -> int | None:
    lsof = shutil.which("lsof")
    if lsof is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found = subprocess.run(
            [lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-t"], capture_output=True, text=True, timeout=5, check=False
        )
        first = found.stdout.split()
        if first and first[0].isdigit():
            return int(first[0])
    return None


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
        if words:
            words[0] = Path(words[0]).name
            return " ".join(words)[:120]
    ps = shutil.which("ps")
    if ps is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(
                [ps, "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
            )
            return found.stdout.strip()[:120]
    return ""
