"""The interpreters the subjects run in: one virtualenv per peer, and the kit's own Lambda package.

Each peer gets a virtualenv under `bench/.envs/` (git-ignored), installed from PyPI with the
exact pins in `bench/requirements/<env>.txt` and reused while those pins are unchanged. The kit
runs the way Lambda runs it: the package `stacks/bundling.py` builds (dependencies, `handlers/`,
the server, precompiled bytecode), unzipped, on an interpreter that has only what the Lambda
runtime provides (boto3) — the `floor` virtualenv. The package is built for this machine's
architecture so it can run here; `zip_mb` is measured on the arm64 package that is deployed.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stacks.bundling import Bundle, BundleSpec, build_bundle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from stacks.bundling import Architecture

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
ENVS_DIR: Final = BENCH / ".envs"
REQUIREMENTS_DIR: Final = BENCH / "requirements"
MARKER: Final = ".bench-requirements-sha256"


class EnvError(RuntimeError):
    """A virtualenv or package could not be prepared; the message says what failed."""


@dataclass(frozen=True)
class Env:
    name: str

    @property
    def path(self) -> Path:
        return ENVS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.name}.txt"

    def pins(self) -> dict[str, str]:
        pins: dict[str, str] = {}
        for line in self.requirements.read_text().splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and not line.lstrip().startswith("#"):
                pins[_normalise(name)] = version
        return pins


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes() + sys.version.encode()).hexdigest()


def ensure_env(env: Env) -> Env:
    """Create (or reuse) the virtualenv with exactly the pinned requirements."""
    wanted = _digest(env.requirements)
    marker = env.path / MARKER
    if env.python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return env
    shutil.rmtree(env.path, ignore_errors=True)
    env.path.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(env.path)],
        [str(env.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "-r",
         str(env.requirements)],
    ]  # fmt: skip
    for command in steps:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise EnvError(f"{' '.join(command)} failed:\n{result.stderr.strip()[-3000:]}")
    marker.write_text(wanted)
    return env


def ensure_envs(envs: Iterable[Env], log: Callable[[str], None]) -> None:
    todo = [env for env in envs if not (env.path / MARKER).is_file()]
    if todo:
        log(f"installing virtualenvs from PyPI: {', '.join(e.name for e in todo)} (once; reused afterwards)")
    # pip spends most of its time waiting on the network, so the installs overlap well on 2 cores.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(ensure_env, envs))


def check_pins_match_kit(env: Env, names: Iterable[str]) -> None:
    """The naive baseline must run the SDK the kit ships, or the comparison means nothing."""
    kit_pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            kit_pins[_normalise(name)] = version
    ours = env.pins()
    for name in names:
        if kit_pins.get(name) != ours.get(name):
            raise EnvError(
                f"{env.requirements} pins {name}=={ours.get(name)} but requirements.txt has "
                f"{name}=={kit_pins.get(name)}; re-pin {env.requirements.name} to the kit's version"
            )


def host_architecture() -> Architecture:
    machine = platform.machine().lower()
    if machine in {"x86_64", "amd64"}:
        return "x86_64"
    if machine in {"aarch64", "arm64"}:
        return "arm64"
    raise EnvError(f"no Lambda architecture matches this machine ({machine})")


def lambda_package(server_dir: Path, architecture: Architecture, cache_dir: Path | None = None) -> Bundle:
    """The server's Lambda zip, built by the stack's own bundler (cached by the hash of its inputs)."""
    spec = BundleSpec(root=ROOT, server_dir=server_dir, architecture=architecture)
    return build_bundle(spec, cache_dir=cache_dir, report=False)


def unpacked(bundle: Bundle) -> Path:
    """The zip extracted once next to itself: Lambda's `/var/task`, here."""
    destination = ENVS_DIR / "tasks" / bundle.path.stem
    if not (destination / MARKER).is_file():
        shutil.rmtree(destination, ignore_errors=True)
        with zipfile.ZipFile(bundle.path) as archive:
            archive.extractall(destination)
        (destination / MARKER).write_text("complete")
    # The bundler names zips `<server>-<arch>-<hash>`; older trees of the same server are stale.
    prefix = bundle.path.stem.rsplit("-", 1)[0] + "-"
    for stale in destination.parent.glob(f"{prefix}*"):
        if stale != destination:
            shutil.rmtree(stale, ignore_errors=True)
    return destination
