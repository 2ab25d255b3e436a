"""Artifact integrity: every changed, missing or extra file is named; DVC cache bytes re-verify.

Expected hashes come from hashlib directly (and, for DVC, from the .dvc file DVC itself wrote),
never from the functions under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlgov_assets.core.integrity import (
    IntegrityError,
    canonical_hash,
    canonical_json,
    copy_verified,
    dvc_cache_path,
    hash_tree,
    manifest_digest,
    md5_file,
    sha256_file,
    verify_dvc_cached,
    verify_tree,
)
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC

DATA = Path(__file__).resolve().parents[2] / "data" / "adult.data"


def _flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture()
def artifact(tmp_path: Path) -> Path:
    """A model-artifact-shaped tree: nested dirs, a hidden file, an empty file, binary bytes."""
    root = tmp_path / "model"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    (root / "model.skops").write_bytes(bytes(range(256)) * 4000)  # > 1 chunk
    (root / "sub" / "conda.yaml").write_text("name: mlgov\n")
    (root / "sub" / "deeper" / ".hidden").write_bytes(b"\x00\x01")
    (root / "empty.txt").write_bytes(b"")
    return root


def _independent_manifest(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# ----------------------------------------------------------------------------- trees


def test_hash_tree_matches_hashlib_and_is_sorted(artifact: Path) -> None:
    manifest = hash_tree(artifact)
    assert manifest == _independent_manifest(artifact)
    assert list(manifest) == sorted(manifest)
    assert "sub/deeper/.hidden" in manifest and "empty.txt" in manifest
    verify_tree(artifact, manifest)  # untouched tree verifies


def test_manifest_digest_is_order_independent_and_content_sensitive(artifact: Path) -> None:
    manifest = hash_tree(artifact)
    reversed_manifest = dict(reversed(list(manifest.items())))
    assert manifest_digest(reversed_manifest) == manifest_digest(manifest)
    expected = hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert manifest_digest(manifest) == expected
    changed = {**manifest, "MLmodel": "0" * 64}
    assert manifest_digest(changed) != manifest_digest(manifest)
    with pytest.raises(ValueError, match="bad"):
        manifest_digest({"../escape": "0" * 64})


def test_flipped_byte_is_named(artifact: Path) -> None:
    manifest = hash_tree(artifact)
    _flip_byte(artifact / "model.skops", offset=700_000)
    with pytest.raises(IntegrityError) as exc:
        verify_tree(artifact, manifest)
    assert [p["path"] for p in exc.value.problems] == ["model.skops"]
    assert exc.value.problems[0]["problem"] == "changed"
    assert "model.skops" in str(exc.value)


def test_deleted_and_added_files_are_named(artifact: Path) -> None:
    manifest = hash_tree(artifact)
    (artifact / "sub" / "conda.yaml").unlink()
    (artifact / "sub" / "deeper" / "evil.pkl").write_bytes(b"cos\nsystem\n")
    with pytest.raises(IntegrityError) as exc:
        verify_tree(artifact, manifest)
    found = {p["path"]: p["problem"] for p in exc.value.problems}
    assert found == {"sub/conda.yaml": "missing", "sub/deeper/evil.pkl": "unexpected extra file"}
    assert "sub/conda.yaml" in str(exc.value) and "evil.pkl" in str(exc.value)


def test_every_problem_is_reported_at_once(artifact: Path) -> None:
    manifest = hash_tree(artifact)
    _flip_byte(artifact / "MLmodel")
    (artifact / "empty.txt").unlink()
    (artifact / "new.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError) as exc:
        verify_tree(artifact, manifest)
    assert {p["path"] for p in exc.value.problems} == {"MLmodel", "empty.txt", "new.bin"}
    assert json.loads(json.dumps(exc.value.to_dict()))["problems"]


def test_symlinks_are_refused(artifact: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"elsewhere")
    manifest = hash_tree(artifact)
    os.symlink(outside, artifact / "sub" / "link.bin")
    with pytest.raises(IntegrityError, match=r"sub/link\.bin.*symlink"):
        hash_tree(artifact)
    with pytest.raises(IntegrityError, match=r"sub/link\.bin"):
        verify_tree(artifact, manifest)


def test_copy_verified_copies_good_trees_and_refuses_bad(artifact: Path, tmp_path: Path) -> None:
    manifest = hash_tree(artifact)
    dest = copy_verified(artifact, manifest, tmp_path / "copy")
    assert _independent_manifest(dest) == manifest
    _flip_byte(artifact / "model.skops", offset=5)
    with pytest.raises(IntegrityError, match=r"model\.skops"):
        copy_verified(artifact, manifest, tmp_path / "copy2")
    assert not (tmp_path / "copy2").exists()


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hash_tree(tmp_path / "nope")


# ----------------------------------------------------------------------------- canonical JSON


def test_canonical_json_is_stable_and_strict() -> None:
    doc = {"b": [1, 2.5, "é"], "a": {"z": None, "y": True}, "n": np.float64(0.25), "i": np.int64(3)}
    expected = '{"a":{"y":true,"z":null},"b":[1,2.5,"é"],"i":3,"n":0.25}'
    assert canonical_json(doc) == expected
    assert canonical_hash(doc) == hashlib.sha256(expected.encode()).hexdigest()
    assert canonical_hash(json.loads(canonical_json(doc))) == canonical_hash(doc)  # round trip
    with pytest.raises(ValueError, match=r"\$.x.y"):
        canonical_json({"x": {"y": float("inf")}})
    with pytest.raises(TypeError, match="set"):
        canonical_json({"x": {1, 2}})


# ----------------------------------------------------------------------------- file hashes


def test_file_hashes_on_real_adult_data() -> None:
    raw = DATA.read_bytes()
    assert sha256_file(DATA) == hashlib.sha256(raw).hexdigest()
    assert md5_file(DATA) == hashlib.md5(raw).hexdigest()
    assert (
        len(read_raw(open_project(DEFAULT_PROJECT_SPEC, DATA.parents[1]), DATA)) == 32_561
    )  # the bytes hashed are the real training data


# ----------------------------------------------------------------------------- DVC cache


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory):
    """A real git + DVC repo with the Adult training file added (Python API, well under 1 s)."""
    root = tmp_path_factory.mktemp("dvcrepo")
    with pytest.MonkeyPatch.context() as mp:
        # no analytics files or site cache in the system temp dir (STACK-NOTES)
        mp.setenv("DVC_NO_ANALYTICS", "1")
        mp.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.mktemp("dvc_site")))
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        from dvc.repo import Repo

        Repo.init(os.fspath(root)).close()
        data = root / "adult.data"
        data.write_bytes(DATA.read_bytes())
        repo = Repo(os.fspath(root))
        try:
            repo.add(os.fspath(data.resolve()))  # absolute: Repo.add resolves against CWD
        finally:
            repo.close()
        yield root, data


def test_dvc_md5_and_cache_layout_match_dvc(dvc_repo: tuple[Path, Path]) -> None:
    root, data = dvc_repo
    out = yaml.safe_load((root / "adult.data.dvc").read_text())["outs"][0]
    assert out.get("hash") == "md5"  # DVC 3 plain md5, not legacy md5-dos2unix
    assert md5_file(data) == out["md5"]
    cache = root / ".dvc" / "cache"
    cached = dvc_cache_path(cache, out["md5"])
    assert cached.is_file()
    assert cached.read_bytes() == DATA.read_bytes()
    # the layout is the only object file DVC wrote
    objects = [p for p in (cache / "files").rglob("*") if p.is_file()]
    assert objects == [cached]
    ok, detail = verify_dvc_cached(cache, out["md5"])
    assert ok, detail


def test_flipped_byte_in_dvc_cache_fails(dvc_repo: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = dvc_repo
    md5 = yaml.safe_load((root / "adult.data.dvc").read_text())["outs"][0]["md5"]
    cached = dvc_cache_path(root / ".dvc" / "cache", md5)
    original = cached.read_bytes()
    os.chmod(cached, 0o644)  # DVC makes cache objects read-only
    try:
        _flip_byte(cached, offset=12_345)
        ok, detail = verify_dvc_cached(root / ".dvc" / "cache", md5)
        assert not ok and str(cached) in detail and md5 in detail
    finally:
        cached.write_bytes(original)
    ok, detail = verify_dvc_cached(root / ".dvc" / "cache", "0" * 32)
    assert not ok and "not found" in detail
    with pytest.raises(ValueError, match="32 lowercase hex"):
        dvc_cache_path(root, "abc.dir")
