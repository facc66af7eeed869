"""The Lambda zip, built without Docker and cached by the hash of everything that goes into it.

`pip install --platform … --only-binary=:all:` fetches the Linux wheels for the target
architecture from any host, so synth needs neither Docker nor an arm64 machine. The zip is
deterministic (sorted entries, fixed timestamps, fixed modes), so CDK's asset hash changes only
when the inputs do and an unchanged server is not re-uploaded or re-deployed.

Layout at the zip root (the Lambda code root, `/var/task`): the runtime dependencies, the
`handlers/` package and the one server at `servers/<name>/`, which is the path `MCPKIT_SERVER`
names relative to the code root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

Architecture = Literal["arm64", "x86_64"]

# Bump when the bundling procedure changes, so old cache entries stop matching.
BUNDLE_FORMAT: Final = "mcpkit-bundle-4"
LAMBDA_PYTHON_VERSION: Final = "3.12"
LAMBDA_CODE_ROOT: Final = "/var/task"
# Lambda quotas for a .zip deployment package (docs: "Lambda quotas", deployment package size).
MAX_ZIPPED_BYTES: Final = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES: Final = 250 * 1024 * 1024
PLATFORMS: Final[dict[Architecture, str]] = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# The managed Python runtime ships boto3/botocore/s3transfer; a second copy costs ~25 MB and cold-start time.
RUNTIME_PROVIDED: Final[frozenset[str]] = frozenset({"boto3", "botocore", "s3transfer"})
# Nothing under these names is ever imported in Lambda.
SKIPPED_DIRS: Final[frozenset[str]] = frozenset({"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
SKIPPED_SUFFIXES: Final[tuple[str, ...]] = (".pyc", ".pyo")
FIXED_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)
STALE_AFTER_SECONDS: Final = 3600


class BundlingError(RuntimeError):
    """The Lambda package could not be built or breaks a Lambda limit; synth stops with this message."""


@dataclass(frozen=True)
class BundleSpec:
    """Everything that decides the content of one server's zip."""

    root: Path
    server_dir: Path
    architecture: Architecture = "arm64"
    python_version: str = LAMBDA_PYTHON_VERSION

    @property
    def requirements(self) -> Path:
        return self.root / "requirements.txt"

    @property
    def handlers_dir(self) -> Path:
        return self.root / "handlers"

    @property
    def server_relative(self) -> Path:
        # abspath, not resolve(): a symlinked server folder still lives at servers/<name> in the zip.
        return Path(os.path.abspath(self.server_dir)).relative_to(os.path.abspath(self.root))  # noqa: PTH100

    @property
    def platform(self) -> str:
        return PLATFORMS[self.architecture]


@dataclass(frozen=True)
class Bundle:
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    cache_hit: bool


def pip_install(spec: BundleSpec, target: Path) -> None:
    """Install the runtime requirements as Linux wheels for the target architecture into `target`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--platform",
        spec.platform,
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
        "--only-binary=:all:",
        # Bytecode is compiled below, for the Lambda path and with hash-based invalidation.
        "--no-compile",
        "--target",
        str(target),
        "-r",
        str(spec.requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(
            f"pip could not install {spec.requirements} for {spec.platform} / Python {spec.python_version} "
            f"(only binary wheels can be used without Docker):\n{result.stderr.strip() or result.stdout.strip()}"
        )


def _source_files(directory: Path) -> Iterator[Path]:
    """The files of a source folder that belong in Lambda, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.endswith(SKIPPED_SUFFIXES) and not filename.startswith("."):
                yield Path(dirpath) / filename


class _Hasher:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def feed(self, label: str, data: bytes) -> None:
        # Length-prefixed so that no two different input sets hash the same byte stream.
        for part in (label.encode(), data):
            self._digest.update(len(part).to_bytes(8, "big"))
            self._digest.update(part)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def dependencies_key(spec: BundleSpec) -> str:
    """sha256 over what decides the installed dependencies: requirements, platform, Python version."""
    hasher = _Hasher()
    hasher.feed("format", BUNDLE_FORMAT.encode())
    hasher.feed("platform", spec.platform.encode())
    hasher.feed("python", spec.python_version.encode())
    hasher.feed("requirements", spec.requirements.read_bytes())
    return hasher.hexdigest()


def cache_key(spec: BundleSpec) -> str:
    """sha256 over every input of the zip; equal keys mean an identical package."""
    hasher = _Hasher()
    hasher.feed("dependencies", dependencies_key(spec).encode())
    for source_root, arcroot in _source_roots(spec):
        for path in _source_files(source_root):
            hasher.feed(f"file:{(arcroot / path.relative_to(source_root)).as_posix()}", path.read_bytes())
    return hasher.hexdigest()


def _source_roots(spec: BundleSpec) -> tuple[tuple[Path, Path], ...]:
    """(folder on disk, its path in the zip) for the kit's runtime and the one server."""
    return ((spec.handlers_dir, Path("handlers")), (spec.server_dir, spec.server_relative))


def _prune(site: Path, python_version: str) -> None:
    """Drop what the Lambda runtime never loads from the installed dependencies."""
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(site / name, ignore_errors=True)
        for dist_info in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(dist_info)
    # Console scripts point at the build machine's interpreter; Lambda never runs them.
    shutil.rmtree(site / "bin", ignore_errors=True)
    tag = f"cpython-{python_version.replace('.', '')}"
    for cache in list(site.rglob("__pycache__")):
        for pyc in cache.iterdir():
            if tag not in pyc.name:
                pyc.unlink()


def _copy_sources(spec: BundleSpec, site: Path) -> None:
    for source_root, arcroot in _source_roots(spec):
        for path in _source_files(source_root):
            destination = site / arcroot / path.relative_to(source_root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def _compile(site: Path, python_version: str) -> None:
    """Precompile bytecode: Lambda's code root is read-only, so without .pyc every cold start recompiles."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != python_version:
        # Bytecode is version-specific; a mismatched .pyc would only be ignored, so ship none.
        print(
            f"mcpkit: Python {running} cannot precompile for the Python {python_version} runtime; "
            "shipping sources only (slower cold starts)",
            file=sys.stderr,
        )
        return
    # Unchecked-hash .pyc are used without stat-ing the source; `/var/task` paths make tracebacks match Lambda.
    # A subprocess, not compileall.compile_dir(workers=0): its process pool re-imports __main__ (app.py).
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(site),
            "-p",
            LAMBDA_CODE_ROOT,
            str(site),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    ok = result.returncode == 0
    if not ok:
        # Some wheels ship deliberately uncompilable .py files (templates, fixtures); those only stay uncompiled.
        print("mcpkit: some files in the Lambda package could not be byte-compiled; shipped as source", file=sys.stderr)


def _write_zip(trees: Sequence[Path], destination: Path) -> int:
    """Zip the union of `trees` deterministically (sorted, fixed time and modes); returns the unzipped size."""
    entries: dict[str, Path] = {}
    for tree in trees:
        for path in tree.rglob("*"):
            if path.is_file():
                entries[path.relative_to(tree).as_posix()] = path
    total = 0
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for arcname in sorted(entries):
            path = entries[arcname]
            info = zipfile.ZipInfo(arcname, date_time=FIXED_ZIP_TIME)
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            total += len(data)
            archive.writestr(info, data, compresslevel=6)
    return total


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """One build per key at a time (parallel test workers, two stacks of one server)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_limits(bundle: Bundle, name: str) -> None:
    mib = 1024 * 1024
    if bundle.zipped_bytes > MAX_ZIPPED_BYTES or bundle.unzipped_bytes > MAX_UNZIPPED_BYTES:
        raise BundlingError(
            f"the Lambda package for {name!r} is {bundle.zipped_bytes / mib:.1f} MiB zipped / "
            f"{bundle.unzipped_bytes / mib:.1f} MiB unzipped; Lambda allows {MAX_ZIPPED_BYTES // mib} MiB zipped "
            f"and {MAX_UNZIPPED_BYTES // mib} MiB unzipped. Trim requirements.txt ({bundle.path})."
        )


def _drop_stale(candidates: Iterable[Path], *, keep: Path) -> None:
    """Remove superseded cache entries, but only old ones: a concurrent synth may still be copying one."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    for stale in candidates:
        if stale == keep or stale.stat().st_mtime > cutoff:
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _dependencies(spec: BundleSpec, cache: Path, installer: Callable[[BundleSpec, Path], None]) -> Path:
    """The installed, pruned, byte-compiled dependencies, shared by every server with the same requirements."""
    key = dependencies_key(spec)
    target = cache / f"deps-{spec.architecture}-{key[:20]}"
    with _locked(cache / f"deps-{spec.architecture}.lock"):
        if not target.is_dir():
            with tempfile.TemporaryDirectory(prefix=".deps-", dir=cache) as work:
                site = Path(work) / "site"
                site.mkdir()
                installer(spec, site)
                _prune(site, spec.python_version)
                _compile(site, spec.python_version)
                site.rename(target)
            _drop_stale(cache.glob(f"deps-{spec.architecture}-*"), keep=target)
    return target


def build_bundle(
    spec: BundleSpec,
    *,
    cache_dir: Path | None = None,
    installer: Callable[[BundleSpec, Path], None] = pip_install,
    report: bool = True,
) -> Bundle:
    """The server's Lambda zip: reused from `cache_dir` when every input is unchanged, else built."""
    if not spec.requirements.is_file():
        raise BundlingError(f"{spec.requirements}: missing; it lists the runtime dependencies for the Lambda zip")
    if not (spec.handlers_dir / "lambda_handler.py").is_file():
        raise BundlingError(f"{spec.handlers_dir / 'lambda_handler.py'}: missing; it is the Lambda entry point")
    cache = cache_dir if cache_dir is not None else spec.root / ".build"
    cache.mkdir(parents=True, exist_ok=True)
    name = spec.server_dir.name
    key = cache_key(spec)
    zip_path = cache / f"{name}-{spec.architecture}-{key[:20]}.zip"

    with _locked(cache / f"{name}-{spec.architecture}.lock"):
        if zip_path.is_file():
            bundle = Bundle(zip_path, zip_path.stat().st_size, unzipped_size(zip_path), cache_hit=True)
        else:
            dependencies = _dependencies(spec, cache, installer)
            with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=cache) as work:
                sources = Path(work) / "sources"
                sources.mkdir()
                _copy_sources(spec, sources)
                _compile(sources, spec.python_version)
                partial = Path(work) / "package.zip"
                unzipped = _write_zip([dependencies, sources], partial)
                # Atomic: a reader never sees a half-written zip under the final name.
                partial.replace(zip_path)
            bundle = Bundle(zip_path, zip_path.stat().st_size, unzipped, cache_hit=False)
            _drop_stale(cache.glob(f"{name}-{spec.architecture}-*.zip"), keep=zip_path)

    if report:
        mib = 1024 * 1024
        print(
            f"mcpkit: Lambda package for {name} ({spec.architecture}): {bundle.zipped_bytes / mib:.1f} MiB zipped, "
            f"{bundle.unzipped_bytes / mib:.1f} MiB unzipped{' (cached)' if bundle.cache_hit else ''}",
            file=sys.stderr,
        )
    _check_limits(bundle, name)
    return bundle
