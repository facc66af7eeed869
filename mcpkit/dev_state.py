"""`mcpkit dev`'s state between runs: `.mcpkit/dev/<server>/` next to the servers folder (git-ignored).

moto keeps everything in memory and offers no persistence of its own (its recorder replays API
calls, which would mint new user `sub`s, client ids and KMS key material). Its server runs in this
process, so the backends themselves (table items, user pool, app client, KMS key with its private
key) are pickled to the folder a moment after they change and when `mcpkit dev` stops, and loaded
back before the emulator answers its first request. Tokens signed before a restart therefore
verify after it, and a connected client keeps its sign-in. The dev user's password and the
session-signing key are kept beside them. `mcpkit dev --fresh` deletes the folder first.

The folder is this user's own (0700); a pickle is only ever read from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import secrets
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

STATE_DIR = Path(".mcpkit") / "dev"
SNAPSHOT = "aws.pickle"
SECRETS = "dev.json"
LOCK = "lock"
# moto's backend names for what the kit emulates (local_aws.EMULATED_SERVICES).
BACKENDS = ("dynamodb", "cognito-idp", "kms", "secretsmanager", "ssm", "s3")
SAVE_INTERVAL_SECONDS = 1.0


def state_folder(servers_dir: Path, server: str) -> Path:
    """`<project>/.mcpkit/dev/<server>`: the project is the folder that holds `servers/`."""
    return servers_dir.resolve().parent / STATE_DIR / server


def load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, None)


def _private_key_reducer(key: Any) -> tuple[Callable[[bytes], Any], tuple[bytes]]:
    from cryptography.hazmat.primitives import serialization

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return load_private_key, (der,)


class _Pickler(pickle.Pickler):
    """cryptography's Rust-backed private keys do not pickle; they travel as PKCS#8 DER."""

    def reducer_override(self, obj: Any) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if isinstance(obj, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            return _private_key_reducer(obj)
        return NotImplemented


class DevState:
    """One server's state folder: a lock (one `mcpkit dev` writes it at a time), secrets and the emulator snapshot."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.skipped: list[str] = []
        self._lock_file: io.TextIOWrapper | None = None
        self._last_digest = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the folder ----------------------------------------------------------------------------

    def acquire(self, *, fresh: bool) -> bool:
        """Own the folder (False: another live `mcpkit dev` does); `fresh` empties it first."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _ignore_in_git(self.folder)
        handle = (self.folder / LOCK).open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        if fresh:
            for entry in self.folder.iterdir():
                if entry.name != LOCK:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return True

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / LOCK).read_text(encoding="utf-8").strip()
        return "?"

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """A value kept across runs (the dev password, the session key), made once."""
        path = self.folder / SECRETS
        values: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            values = json.loads(path.read_text(encoding="utf-8"))
        if name not in values:
            values[name] = make()
            _write_private(path, json.dumps(values, indent=2).encode())
        return values[name]

    # -- the emulator --------------------------------------------------------------------------

    def restore(self) -> str | None:
        """Load the last snapshot into the running emulator; a message if it could not be used."""
        path = self.folder / SNAPSHOT
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
            snapshot: dict[str, dict[str, dict[str, Any]]] = pickle.loads(data)  # noqa: S301 - our own 0700 folder
        except Exception as exc:  # noqa: BLE001 - any unreadable snapshot (e.g. from another moto version) is set aside
            path.replace(path.with_suffix(".unreadable"))
            return f"{path}: could not be loaded ({type(exc).__name__}); starting with empty dev state"
        from moto.backends import get_backend

        for service, accounts in snapshot.items():
            backends: Any = get_backend(service)  # type: ignore[call-overload]
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    backends[account][region] = backend
        self._last_digest = hashlib.sha256(data).hexdigest()
        return None

    def save(self) -> None:
        """Write the emulator's state if it changed since the last write."""
        from moto.backends import get_backend

        snapshot: dict[str, dict[str, dict[str, Any]]] = {}
        for service in BACKENDS:
            if service in self.skipped:
                continue
            backends: Any = get_backend(service)  # type: ignore[call-overload]
            accounts = {account: dict(regions) for account, regions in backends.items()}
            try:
                self._dumps(accounts)
            except (pickle.PicklingError, TypeError, AttributeError):
                self.skipped.append(service)  # e.g. moto's SSM backend holds a lambda
                continue
            snapshot[service] = accounts
        data = self._dumps(snapshot)
        digest = hashlib.sha256(data).hexdigest()
        if digest != self._last_digest:
            _write_private(self.folder / SNAPSHOT, data)
            self._last_digest = digest

    def autosave(self, on_error: Callable[[str], None]) -> None:
        """Save about once a second in the background, so even a killed `mcpkit dev` loses at most that."""

        def loop() -> None:
            while not self._stop.wait(SAVE_INTERVAL_SECONDS):
                try:
                    self.save()
                except RuntimeError:
                    continue  # a backend changed while it was pickled; the next round gets it
                except OSError as exc:
                    on_error(f"could not save the dev state to {self.folder}: {exc}")

        self._thread = threading.Thread(target=loop, name="dev-state-autosave", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._lock_file is None:
            return  # closed already (SIGTERM's handler, then the normal exit)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for _ in range(3):
            try:
                self.save()
                break
            except RuntimeError:
                continue
        self.release()

    def _dumps(self, value: object) -> bytes:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return buffer.getvalue()


def _write_private(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    partial.replace(path)


def _ignore_in_git(folder: Path) -> None:
    """A `.gitignore` at `.mcpkit/`, so the state is never committed whatever the project's own ignores say."""
    root = next((p for p in folder.parents if p.name == ".mcpkit"), None)
    if root is not None and not (root / ".gitignore").exists():
        (root / ".gitignore").write_text("# mcpkit dev's local state (emulated AWS, dev password): never commit.\n*\n")


def new_password() -> str:
    # Cognito's default policy: upper and lower case, a digit, at least 8 characters.
    return f"{secrets.token_urlsafe(12)}-Aa1"
