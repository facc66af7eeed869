"""The Docker-free Lambda package: content, pruning, determinism, cache, limits."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from stacks.bundling import (
    FIXED_ZIP_TIME,
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    Bundle,
    BundleSpec,
    BundlingError,
    _check_limits,
    build_bundle,
    cache_key,
)
from tests.stacks.conftest import BUILD_DIR, ROOT

pytestmark = pytest.mark.slow


def _fake_installer(spec: BundleSpec, target: Path) -> None:
    """What pip leaves behind, including what the bundler must drop (no network)."""
    (target / "fakepkg").mkdir()
    (target / "fakepkg" / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    for name in ("boto3", "botocore"):
        (target / name).mkdir()
        (target / name / "__init__.py").write_text("", encoding="utf-8")
        (target / f"{name}-1.0.dist-info").mkdir()
        (target / f"{name}-1.0.dist-info" / "METADATA").write_text("", encoding="utf-8")
    (target / "bin").mkdir()
    (target / "bin" / "tool").write_text("#!/usr/bin/python\n", encoding="utf-8")
    (target / "fakepkg" / "__pycache__").mkdir()
    (target / "fakepkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"old")


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    root = tmp_path / "kit"
    (root / "handlers").mkdir(parents=True)
    (root / "handlers" / "__init__.py").write_text("", encoding="utf-8")
    (root / "handlers" / "lambda_handler.py").write_text("def handler(e, c):\n    return {}\n", encoding="utf-8")
    (root / "handlers" / "tests").mkdir()
    (root / "handlers" / "tests" / "test_x.py").write_text("", encoding="utf-8")
    (root / "requirements.txt").write_text("fakepkg==1.0\n", encoding="utf-8")
    server = root / "servers" / "demo"
    (server / "tests").mkdir(parents=True)
    (server / "server.py").write_text("mcp = None\n", encoding="utf-8")
    (server / "tests" / "test_demo.py").write_text("", encoding="utf-8")
    return root


def test_package_layout_and_pruning(kit: Path, tmp_path: Path) -> None:
    spec = BundleSpec(root=kit, server_dir=kit / "servers" / "demo")
    bundle = build_bundle(spec, cache_dir=tmp_path / "cache", installer=_fake_installer, report=False)
    assert not bundle.cache_hit
    with zipfile.ZipFile(bundle.path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {FIXED_ZIP_TIME}
    assert "handlers/lambda_handler.py" in names
    assert "handlers/__pycache__/lambda_handler.cpython-312.pyc" in names
    assert "servers/demo/server.py" in names
    assert "fakepkg/__init__.py" in names
    assert "fakepkg/__pycache__/__init__.cpython-312.pyc" in names
    assert not [n for n in names if n.startswith(("boto3", "botocore", "bin/"))]
    assert not [n for n in names if "/tests/" in n or "cpython-311" in n]


def test_same_inputs_hit_the_cache_and_any_change_misses(kit: Path, tmp_path: Path) -> None:
    spec = BundleSpec(root=kit, server_dir=kit / "servers" / "demo")
    cache = tmp_path / "cache"
    first = build_bundle(spec, cache_dir=cache, installer=_fake_installer, report=False)

    def no_network(spec: BundleSpec, target: Path) -> None:
        raise AssertionError("a warm cache must not install anything")

    again = build_bundle(spec, cache_dir=cache, installer=no_network, report=False)
    assert again.cache_hit
    assert again.path == first.path
    key = cache_key(spec)
    (kit / "servers" / "demo" / "server.py").write_text("mcp = 1\n", encoding="utf-8")
    assert cache_key(spec) != key
    # Dependencies are cached apart from sources, so a source edit rebuilds the zip without pip.
    rebuilt = build_bundle(spec, cache_dir=cache, installer=no_network, report=False)
    assert not rebuilt.cache_hit
    # The superseded zip stays until it is old: a concurrent synth may still be copying it.
    assert first.path.exists()
    os.utime(first.path, (0, 0))
    (kit / "servers" / "demo" / "server.py").write_text("mcp = 2\n", encoding="utf-8")
    build_bundle(spec, cache_dir=cache, installer=no_network, report=False)
    assert not first.path.exists()
    assert cache_key(BundleSpec(root=kit, server_dir=kit / "servers" / "demo", architecture="x86_64")) != cache_key(
        spec
    )
    (kit / "requirements.txt").write_text("fakepkg==2.0\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="warm cache"):
        build_bundle(spec, cache_dir=cache, installer=no_network, report=False)


def test_zip_is_byte_for_byte_reproducible(kit: Path, tmp_path: Path) -> None:
    spec = BundleSpec(root=kit, server_dir=kit / "servers" / "demo")
    one = build_bundle(spec, cache_dir=tmp_path / "a", installer=_fake_installer, report=False)
    two = build_bundle(spec, cache_dir=tmp_path / "b", installer=_fake_installer, report=False)
    assert one.path.read_bytes() == two.path.read_bytes()


def test_missing_entry_point_fails(kit: Path, tmp_path: Path) -> None:
    (kit / "handlers" / "lambda_handler.py").unlink()
    with pytest.raises(BundlingError, match=r"lambda_handler\.py: missing"):
        build_bundle(BundleSpec(root=kit, server_dir=kit / "servers" / "demo"), cache_dir=tmp_path)


@pytest.mark.parametrize(("zipped", "unzipped"), [(MAX_ZIPPED_BYTES + 1, 1), (1, MAX_UNZIPPED_BYTES + 1)])
def test_lambda_size_limits_fail_synth(zipped: int, unzipped: int) -> None:
    with pytest.raises(BundlingError, match="Lambda allows 50 MiB zipped and 250 MiB unzipped"):
        _check_limits(Bundle(Path("x.zip"), zipped, unzipped, cache_hit=False), "big")
    _check_limits(Bundle(Path("x.zip"), MAX_ZIPPED_BYTES, MAX_UNZIPPED_BYTES, cache_hit=False), "fits")


def test_real_package_for_the_example_server() -> None:
    """The real pip install (cached in .build/ by input hash after the first run)."""
    spec = BundleSpec(root=ROOT, server_dir=ROOT / "servers" / "example")
    build_bundle(spec, cache_dir=BUILD_DIR, report=False)
    key = cache_key(spec)
    bundle = build_bundle(spec, cache_dir=BUILD_DIR, report=False)
    # A miss is only allowed when someone edited handlers/ or the server in between.
    assert bundle.cache_hit or cache_key(spec) != key
    assert bundle.zipped_bytes < MAX_ZIPPED_BYTES
    with zipfile.ZipFile(bundle.path) as archive:
        names = set(archive.namelist())
    assert "handlers/lambda_handler.py" in names
    assert "servers/example/server.py" in names
    assert "mcp/__init__.py" in names
    assert "pydantic_core/__init__.py" in names
    assert any(n.startswith("pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu") for n in names)
    assert not [n for n in names if n.startswith(("boto3/", "botocore/"))]
    assert not [n for n in names if n.startswith("servers/example/tests/")]
