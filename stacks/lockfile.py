"""Hash-pinned lock files for the Lambda dependencies, for both Lambda architectures at once.

`requirements.txt` names what the runtime needs; `requirements.lock` pins its whole dependency
closure, each with the sha256 of every wheel that may be installed for it on Lambda (arm64 and
x86_64, CPython 3.12). The bundler installs from the lock with `pip --require-hashes`, so a wheel
that changed on the index (or in a mirror) fails the build instead of landing in the zip.

A server that needs more than the kit (`servers/<name>/requirements.txt`) gets its own
`requirements.lock` next to it, resolved together with the kit's requirements so that one
consistent set of versions is installed.

Each lock starts with the sha256 of the requirement files it was made from; the bundler refuses a
lock whose inputs changed since (`make lock` regenerates every lock).

    python -m stacks.lockfile            # what `make lock` runs: the kit's and every server's lock
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

LOCK_FILE: Final = "requirements.lock"
REQUIREMENTS_FILE: Final = "requirements.txt"
LOCK_PLATFORMS: Final = ("manylinux2014_aarch64", "manylinux2014_x86_64")
LOCK_PYTHON: Final = "3.12"
INPUTS_PREFIX: Final = "# inputs-sha256: "
_INPUTS_LINE: Final = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})$", re.MULTILINE)


class LockError(RuntimeError):
    """A lock could not be made or does not match its inputs; the message says what to run."""


def normalise(name: str) -> str:
    """PEP 503 project name normalisation (`Typing_Extensions` and `typing-extensions` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def inputs_digest(requirement_files: Sequence[Path]) -> str:
    """sha256 over the requirement files a lock is made from, in order (kit first, then the server's)."""
    digest = hashlib.sha256()
    for path in requirement_files:
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def recorded_inputs(lock: Path) -> str | None:
    match = _INPUTS_LINE.search(lock.read_text(encoding="utf-8"))
    return match.group(1) if match else None


def check_fresh(lock: Path, requirement_files: Sequence[Path]) -> None:
    """Fail unless `lock` exists and was generated from exactly these requirement files."""
    inputs = " + ".join(str(p) for p in requirement_files)
    if not lock.is_file():
        raise LockError(f"{lock}: missing; it pins (with hashes) what {inputs} installs. Run `make lock`.")
    if recorded_inputs(lock) != inputs_digest(requirement_files):
        raise LockError(f"{lock} is out of date: {inputs} changed since it was generated. Run `make lock`.")


@dataclass
class Pin:
    version: str
    hashes: set[str] = field(default_factory=set)


def resolve(requirement_files: Sequence[Path], platform: str, python_version: str = LOCK_PYTHON) -> dict[str, Pin]:
    """What pip would install for `platform` (name → version and wheel sha256), without installing it."""
    with tempfile.TemporaryDirectory(prefix="mcpkit-lock-") as work:
        report = Path(work) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
            "--dry-run", "--ignore-installed", "--report", str(report),
            "--platform", platform, "--implementation", "cp", "--python-version", python_version,
            "--only-binary=:all:", "--target", str(Path(work) / "target"),
        ]  # fmt: skip
        for path in requirement_files:
            command += ["-r", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LockError(f"pip could not resolve {platform}:\n{result.stderr.strip() or result.stdout.strip()}")
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    pins: dict[str, Pin] = {}
    for item in installs:
        sha256 = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        name = normalise(item["metadata"]["name"])
        if not sha256:
            raise LockError(f"the index gave no sha256 for {name} ({item['download_info'].get('url')})")
        pins[name] = Pin(item["metadata"]["version"], {sha256})
    return pins


def merge(per_platform: dict[str, dict[str, Pin]]) -> dict[str, Pin]:
    """One pin per project covering every platform; versions must agree or the lock would differ by platform."""
    merged: dict[str, Pin] = {}
    for platform, pins in per_platform.items():
        for name, pin in pins.items():
            seen = merged.setdefault(name, Pin(pin.version))
            if seen.version != pin.version:
                raise LockError(
                    f"{name} resolves to {seen.version} on one platform and {pin.version} on {platform}; "
                    "pin it in requirements.txt"
                )
            seen.hashes |= pin.hashes
    return merged


def render(pins: dict[str, Pin], requirement_files: Sequence[Path], root: Path) -> str:
    inputs = ", ".join(_display(p, root) for p in requirement_files)
    lines = [
        f"# Generated by `make lock` (python -m stacks.lockfile) from {inputs}; do not edit.",
        f"# Platforms: {', '.join(LOCK_PLATFORMS)}; CPython {LOCK_PYTHON}. One sha256 per wheel that may be installed.",
        f"{INPUTS_PREFIX}{inputs_digest(requirement_files)}",
    ]
    for name in sorted(pins):
        pin = pins[name]
        hashes = sorted(pin.hashes)
        lines.append(f"{name}=={pin.version} \\")
        lines += [f"    --hash=sha256:{h} \\" for h in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}")
    return "\n".join(lines) + "\n"


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def write_lock(lock: Path, requirement_files: Sequence[Path], root: Path) -> None:
    pins = merge({platform: resolve(requirement_files, platform) for platform in LOCK_PLATFORMS})
    lock.write_text(render(pins, requirement_files, root), encoding="utf-8")


def server_folders(root: Path) -> Iterable[Path]:
    """Server and template folders that add requirements of their own."""
    for parent in (root / "servers", root / "server_templates"):
        if parent.is_dir():
            yield from sorted(p for p in parent.iterdir() if (p / REQUIREMENTS_FILE).is_file())


def lock_all(root: Path) -> list[Path]:
    kit = root / REQUIREMENTS_FILE
    written = [root / LOCK_FILE]
    write_lock(written[0], [kit], root)
    for folder in server_folders(root):
        write_lock(folder / LOCK_FILE, [kit, folder / REQUIREMENTS_FILE], root)
        written.append(folder / LOCK_FILE)
    return written


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    for lock in lock_all(root):
        print(f"wrote {_display(lock, root)}")


if __name__ == "__main__":
    main()
