"""The Lambda zip, built without Docker and cached by the hash of everything that goes into it.

`pip install --platform … --only-binary=:all:` fetches the Linux wheels for the target
architecture from any host, so synth needs neither Docker nor an arm64 machine. The zip is
deterministic (sorted entries, fixed timestamps, fixed modes), so CDK's asset hash changes only
when the inputs do and an unchanged server is not re-uploaded or re-deployed.

Layout at the zip root (the Lambda code root, `/var/task`): the runtime dependencies, the
`handlers/` package and the one server at `servers/<name>/`, which is the path `MCPKIT_SERVER`
names relative to the code root.

What keeps the zip small (measured step by step in docs/infrastructure.md):
- dependencies are installed from the hash-pinned `requirements.lock` (`--require-hashes`), plus a
  server's own `servers/<name>/requirements.txt` through that server's lock (stacks/lockfile.py);
- dependency libraries ship sourceless: legacy-layout bytecode (`module.pyc` beside where
  `module.py` was) and no `.py`, except the few files a library reads as data (`KEEP_SOURCE`);
  `handlers/` and the server keep their sources, so their tracebacks show lines;
- what the Lambda runtime never imports is left out (`PRUNED`, each entry with its reason) unless
  the server's own requirements need it; a server that imports a pruned module fails the build;
- compiled extensions lose their static symbol tables and debug sections (`stacks/elf.py`, the
  part of `strip` a Python extension can do without), after the hash-checked install: a build
  step like the bytecode compilation, on the installed copy, never on a downloaded wheel;
- the zip is deflated at level 9.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from stacks.elf import strip_symbols
from stacks.lockfile import LOCK_FILE, REQUIREMENTS_FILE, LockError, check_fresh, normalise

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

Architecture = Literal["arm64", "x86_64"]

# Bump when the bundling procedure changes, so old cache entries stop matching.
BUNDLE_FORMAT: Final = "mcpkit-bundle-6"
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
# Library files read as data at import time, so they keep their source (bytecode then goes to
# __pycache__, because a .py beside a legacy .pyc wins and would be recompiled on every cold start).
KEEP_SOURCE: Final[frozenset[str]] = frozenset(
    {
        # anyio builds its lazy-import table by parsing its own __init__ (inspect.getsource); without
        # the source it silently imports every submodule eagerly instead.
        "anyio/__init__.py",
        "anyio/abc/__init__.py",
    }
)
# Installer bookkeeping in *.dist-info that nothing reads at run time (importlib.metadata needs
# METADATA and entry_points.txt, which stay). RECORD is also wrong once files are pruned.
DIST_INFO_NOISE: Final[frozenset[str]] = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


@dataclass(frozen=True)
class Prune:
    """Part of an installed distribution that the Lambda runtime never imports."""

    distribution: str
    # Paths (files or folders ending in "/") relative to the code root; empty: the whole distribution.
    paths: tuple[str, ...]
    # Import names a server must not use when this is pruned (checked in the server's sources).
    modules: tuple[str, ...]
    why: str


# Powertools subpackages outside Logger/Metrics/Tracer (kept: logging, metrics, tracing, shared,
# middleware_factory, utilities/jmespath_utils for the logger's correlation paths, utilities/typing).
_POWERTOOLS_UNUSED: Final = (
    "event_handler",
    *(
        f"utilities/{name}"
        for name in (
            "auth_alpha", "batch", "circuit_breaker", "data_classes", "data_masking", "feature_flags",
            "idempotency", "kafka", "metadata", "parameters", "parser", "streaming", "validation",
        )
    ),
)  # fmt: skip
# Verified on the unzipped package by tests/stacks/test_bundle_smoke.py (the cold path, MCP requests
# of each revision, and the OAuth token path) and with `python -X importtime`. A server whose own
# requirements need one of these distributions gets it back (see `_protected`).
PRUNED: Final[tuple[Prune, ...]] = (
    Prune(
        "uvicorn",
        (),
        ("uvicorn",),
        "an ASGI server; Lambda runs the app through Mangum. `mcp` depends on it for `MCPServer.run()`, and "
        "sse_starlette imports it inside try/except ImportError only to hook uvicorn's graceful shutdown, "
        "which cost ~57 ms of every cold start",
    ),
    Prune("click", (), ("click",), "only uvicorn's command line imports it"),
    Prune(
        "pycparser",
        (),
        ("pycparser",),
        "cffi's C declaration parser, used when compiling cffi modules, never when loading a compiled one",
    ),
    Prune(
        "cffi",
        ("cffi/",),
        ("cffi",),
        "cffi's Python API (FFI, cdef, build tooling); cryptography's Rust binding imports only the compiled "
        "`_cffi_backend` extension, which stays",
    ),
    Prune(
        "pydantic",
        ("pydantic/v1/",),
        ("pydantic.v1",),
        "the pydantic 1 compatibility layer; pydantic and fastapi import it only to detect v1 models, inside "
        "try/except ImportError or on a path that mixes v1 and v2 models",
    ),
    Prune(
        "aws-lambda-powertools",
        tuple(f"aws_lambda_powertools/{p}/" for p in _POWERTOOLS_UNUSED),
        tuple(f"aws_lambda_powertools.{p.replace('/', '.')}" for p in _POWERTOOLS_UNUSED),
        "the runtime uses Powertools' Logger, Metrics and Tracer only; these utilities are 1.2 MB of the zip "
        "(the kept parts never import them; `shared.functions.pydantic_to_dict` would, for a pydantic event, "
        "which API Gateway never sends)",
    ),
    Prune("jsonschema", ("jsonschema/tests/", "jsonschema/benchmarks/"), (), "jsonschema's own test suite"),
    Prune("referencing", ("referencing/tests/",), (), "referencing's own test suite"),
    Prune(
        "mcp",
        ("mcp/cli/",),
        ("mcp.cli",),
        "the SDK's `mcp` command line (`mcp dev`, `mcp run`), which needs typer; the server side never imports it",
    ),
    Prune(
        "anyio",
        ("anyio/_backends/_trio.pyc", "anyio/pytest_plugin.pyc"),
        ("anyio._backends._trio", "anyio.pytest_plugin"),
        "anyio's trio backend (loaded only when running on trio; Lambda's loop is asyncio) and its pytest plugin",
    ),
    Prune("pydantic", ("pydantic/mypy.pyc",), ("pydantic.mypy",), "pydantic's mypy plugin, loaded by mypy only"),
    Prune(
        "starlette",
        ("starlette/testclient.pyc",),
        ("starlette.testclient",),
        "Starlette's test client (tests run outside the zip)",
    ),
)
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
        return self.root / REQUIREMENTS_FILE

    @property
    def server_requirements(self) -> Path | None:
        """The server's own additions to the kit's requirements (optional)."""
        path = self.server_dir / REQUIREMENTS_FILE
        return path if path.is_file() else None

    @property
    def requirement_files(self) -> tuple[Path, ...]:
        extra = self.server_requirements
        return (self.requirements,) if extra is None else (self.requirements, extra)

    @property
    def lock(self) -> Path:
        """The hash-pinned closure to install: the server's own lock when it adds requirements, else the kit's."""
        return (self.root if self.server_requirements is None else self.server_dir) / LOCK_FILE

    @property
    def dependency_set(self) -> str:
        """Servers that add no requirements share one installed set; one that does gets its own."""
        return "kit" if self.server_requirements is None else f"server-{self.server_dir.name}"

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
    """Install the locked runtime requirements as Linux wheels for the target architecture into `target`.

    Every wheel must match a sha256 in the lock (`--require-hashes`); pip also refuses any dependency
    the lock does not pin, so nothing unpinned can slip in.
    """
    try:
        check_fresh(spec.lock, spec.requirement_files)
    except LockError as exc:
        raise BundlingError(str(exc)) from exc
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
        "--require-hashes",
        "--target",
        str(target),
        "-r",
        str(spec.lock),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        if "DO NOT MATCH THE HASHES" in output:
            raise BundlingError(
                f"a downloaded wheel does not match the sha256 pinned in {spec.lock}: the index or a mirror "
                "served different bytes than when the lock was made. Do not deploy; if the change is expected "
                f"(a re-published wheel), regenerate the lock with `make lock` and review the diff.\n{output}"
            )
        raise BundlingError(
            f"pip could not install {spec.lock} for {spec.platform} / Python {spec.python_version} "
            f"(only binary wheels can be used without Docker):\n{output}"
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
    hasher.feed("keep-source", "\n".join(sorted(KEEP_SOURCE)).encode())
    for path in (*spec.requirement_files, spec.lock):
        hasher.feed(f"requirements:{path.name}", path.read_bytes() if path.is_file() else b"")
    return hasher.hexdigest()


def cache_key(spec: BundleSpec) -> str:
    """sha256 over every input of the zip; equal keys mean an identical package."""
    hasher = _Hasher()
    hasher.feed("dependencies", dependencies_key(spec).encode())
    # Editing what is pruned changes the zip without changing any input file.
    hasher.feed("pruned", repr((PRUNED, sorted(DIST_INFO_NOISE))).encode())
    for source_root, arcroot in _source_roots(spec):
        for path in _source_files(source_root):
            # The exec bit is part of the package: Lambda runs handlers/stream_bootstrap as the exec wrapper.
            mode = "x" if os.access(path, os.X_OK) else "-"
            hasher.feed(f"file:{(arcroot / path.relative_to(source_root)).as_posix()}:{mode}", path.read_bytes())
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


_REQUIREMENT_NAME: Final = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _installed(site: Path) -> dict[str, Path]:
    """Normalised distribution name → its *.dist-info folder."""
    found: dict[str, Path] = {}
    for dist_info in site.glob("*.dist-info"):
        for line in (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name:"):
                found[normalise(line.removeprefix("Name:").strip())] = dist_info
                break
    return found


def _requires(dist_info: Path) -> list[str]:
    """Names a distribution depends on, without optional extras (other markers are kept: over-keeping is safe)."""
    names: list[str] = []
    for line in (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = line.removeprefix("Requires-Dist:")
            match = _REQUIREMENT_NAME.match(requirement)
            if match and "extra ==" not in requirement.partition(";")[2]:
                names.append(normalise(match.group(1)))
    return names


def _requirement_names(path: Path) -> list[str]:
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and (match := _REQUIREMENT_NAME.match(line)):
            names.append(normalise(match.group(1)))
    return names


def _protected(spec: BundleSpec, installed: dict[str, Path]) -> set[str]:
    """The server's own requirements and everything they depend on: never pruned."""
    todo = [] if spec.server_requirements is None else _requirement_names(spec.server_requirements)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            if name in installed:
                todo.extend(_requires(installed[name]))
    return seen


def _active_prunes(spec: BundleSpec, site: Path) -> list[Prune]:
    installed = _installed(site)
    protected = _protected(spec, installed)
    return [p for p in PRUNED if normalise(p.distribution) not in protected and normalise(p.distribution) in installed]


def _excluded_paths(site: Path, prunes: Iterable[Prune]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact files, folder prefixes) of `site` that stay out of the zip."""
    installed = _installed(site)
    files: set[str] = set()
    prefixes: list[str] = []
    for prune in prunes:
        if prune.paths:
            prefixes += [p for p in prune.paths if p.endswith("/")]
            files |= {p for p in prune.paths if not p.endswith("/")}
            continue
        dist_info = installed[normalise(prune.distribution)]
        prefixes.append(f"{dist_info.name}/")
        # RECORD names every installed file, so a top-level module or a folder shared with another
        # distribution (namespace packages) is handled exactly; its .py now exist only as legacy .pyc.
        for row in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
            path = row.rsplit(",", 2)[0]
            if path and not path.startswith(".."):
                files.add(path)
                if path.endswith(".py"):
                    files.add(path.removesuffix(".py") + ".pyc")
    return frozenset(files), tuple(prefixes)


_IMPORT: Final = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+([\w\s,()]+)|import\s+([\w.,\s]+?))\s*(?:#.*)?$")


def _imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) for each absolute import statement; a heuristic, not a parser (no code is run)."""
    for number, line in enumerate(source.splitlines(), start=1):
        match = _IMPORT.match(line)
        if match is None:
            continue
        if match.group(1):
            yield number, match.group(1)
            for name in match.group(2).replace("(", "").replace(")", "").split(","):
                name = name.strip().split(" ")[0]
                if name:
                    yield number, f"{match.group(1)}.{name}"
        else:
            for name in match.group(3).split(","):
                yield number, name.strip().split(" ")[0]


def check_server_imports(spec: BundleSpec, prunes: Iterable[Prune]) -> None:
    """Fail the build if the server imports something the zip would leave out: better than an ImportError in Lambda."""
    modules = {module: prune for prune in prunes for module in prune.modules}
    for path in _source_files(spec.server_dir):
        if path.suffix != ".py":
            continue
        for number, imported in _imported_modules(path.read_text(encoding="utf-8", errors="replace")):
            for module, prune in modules.items():
                if imported == module or imported.startswith(f"{module}."):
                    raise BundlingError(
                        f"{path}:{number}: imports {imported}, which the kit leaves out of the Lambda zip "
                        f"({prune.why}). To ship it, add {prune.distribution} to "
                        f"{spec.server_dir / REQUIREMENTS_FILE} and run `make lock`."
                    )


def _copy_sources(spec: BundleSpec, site: Path) -> None:
    for source_root, arcroot in _source_roots(spec):
        for path in _source_files(source_root):
            destination = site / arcroot / path.relative_to(source_root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            # With the mode: an executable (the streaming front's exec wrapper) must stay one in the zip.
            shutil.copy(path, destination)


def _compile(site: Path, python_version: str, *, sourceless: bool = False) -> None:
    """Precompile bytecode: Lambda's code root is read-only, so without .pyc every cold start recompiles.

    `sourceless` (the dependencies): legacy layout (`-b`, `x.pyc` beside `x.py`), then the sources
    go, except `KEEP_SOURCE`. Python imports a lone legacy .pyc directly (SourcelessFileLoader).
    """
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
            *(["-b"] if sourceless else []),
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
    if sourceless:
        _drop_library_sources(site, python_version)


def _drop_library_sources(site: Path, python_version: str) -> None:
    """Delete each .py that has legacy bytecode beside it; a kept source gets its bytecode in __pycache__."""
    tag = f"cpython-{python_version.replace('.', '')}"
    for source in sorted(site.rglob("*.py")):
        legacy = source.with_suffix(".pyc")
        if not legacy.is_file():
            continue  # not compilable (templates, fixtures): the source is all there is
        if source.relative_to(site).as_posix() in KEEP_SOURCE:
            cached = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            cached.parent.mkdir(exist_ok=True)
            legacy.replace(cached)
        else:
            source.unlink()
    # Type stubs are for type checkers only.
    for stub in site.rglob("*.pyi"):
        stub.unlink()


def _strip_extensions(site: Path) -> None:
    """Static symbols and debug sections out of every compiled extension (see `stacks/elf.py`)."""
    for path in sorted(site.rglob("*.so")):
        data = path.read_bytes()
        stripped = strip_symbols(data)
        if stripped is not data:
            path.write_bytes(stripped)


def _write_zip(trees: Sequence[Path], destination: Path, exclude: Callable[[str], bool] | None = None) -> int:
    """Zip the union of `trees` deterministically (sorted, fixed time and modes); returns the unzipped size."""
    entries: dict[str, Path] = {}
    for tree in trees:
        for path in tree.rglob("*"):
            if path.is_file():
                arcname = path.relative_to(tree).as_posix()
                if exclude is None or not exclude(arcname):
                    entries[arcname] = path
    total = 0
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname in sorted(entries):
            path = entries[arcname]
            info = zipfile.ZipInfo(arcname, date_time=FIXED_ZIP_TIME)
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            total += len(data)
            archive.writestr(info, data, compresslevel=9)
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
    family = f"deps-{spec.architecture}-{spec.dependency_set}"
    target = cache / f"{family}-{key[:20]}"
    with _locked(cache / f"{family}.lock"):
        if not target.is_dir():
            with tempfile.TemporaryDirectory(prefix=".deps-", dir=cache) as work:
                site = Path(work) / "site"
                site.mkdir()
                installer(spec, site)
                _prune(site, spec.python_version)
                _compile(site, spec.python_version, sourceless=True)
                _strip_extensions(site)
                site.rename(target)
            _drop_stale(cache.glob(f"{family}-*"), keep=target)
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
            prunes = _active_prunes(spec, dependencies)
            check_server_imports(spec, prunes)
            files, prefixes = _excluded_paths(dependencies, prunes)

            def excluded(arcname: str) -> bool:
                parts = arcname.split("/")
                noise = len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in DIST_INFO_NOISE
                return noise or arcname in files or arcname.startswith(prefixes)

            with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=cache) as work:
                sources = Path(work) / "sources"
                sources.mkdir()
                _copy_sources(spec, sources)
                _compile(sources, spec.python_version)
                partial = Path(work) / "package.zip"
                unzipped = _write_zip([dependencies, sources], partial, exclude=excluded)
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
