"""Content hashes for everything an auditor must be able to re-check, and the one atomic write.

A registry records *where* an artifact is, not *what* it is, and loading unrecorded bytes means
executing whatever is on disk. So every model artifact file gets a sha256 at registration
(`hash_tree`) that the loader re-checks before deserializing (`verify_tree`, `copy_verified`);
training data in DVC's cache is re-hashed by md5 (`md5_file`, `dvc_cache_path`,
`verify_dvc_cached`); JSON documents get a canonical content hash (`canonical_json`,
`canonical_hash`). Pure: stdlib only (numpy only to accept numpy scalars in `canonical_json`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from mlgov_assets.core.errors import Refusal

CHUNK_SIZE = 1 << 20  # 1 MiB: streams files of any size in constant memory

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")

__all__ = [
    "IntegrityError",
    "canonical_hash",
    "canonical_json",
    "copy_verified",
    "dvc_cache_path",
    "fsync_dir",
    "hash_tree",
    "is_sha256",
    "locate_dvc_cached",
    "manifest_digest",
    "md5_file",
    "normalize_json",
    "sha256_file",
    "verify_dvc_cached",
    "verify_tree",
    "write_json_atomic",
]


class IntegrityError(Refusal):
    """Bytes on disk differ from what was recorded (a verification failure: CLI exit 1).

    `problems` lists every finding as a dict (path, problem, expected, actual) so a caller can
    report all of them at once instead of fixing them one at a time.
    """

    def __init__(self, message: str, problems: list[dict[str, str | None]] | None = None):
        super().__init__(message)
        self.problems: list[dict[str, str | None]] = problems or []

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self), "problems": list(self.problems)}


# --------------------------------------------------------------------------- canonical JSON


def normalize_json(obj: Any, where: str) -> Any:
    """Normalize `obj` to plain JSON types, refusing anything that would not round-trip.

    Why strict: a hash is only verifiable if reading the JSON back and re-serializing it gives the
    same bytes. Non-string keys (int keys become strings on the way back and then sort
    differently), NaN/inf (not JSON), and arbitrary objects all break that, so they are refused
    here, naming where they occur.
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    np = sys.modules.get("numpy")  # a numpy scalar exists only once numpy was imported (not imported here)
    if np is not None and isinstance(obj, np.generic):
        return normalize_json(obj.item(), where)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"canonical JSON: non-finite float {obj!r} at {where}")
        return float(obj)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON: key {key!r} at {where} is {type(key).__name__}, must be str")
            out[key] = normalize_json(value, f"{where}.{key}")
        return out
    if isinstance(obj, (list, tuple)):
        return [normalize_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(
        f"canonical JSON: value at {where} has type {type(obj).__name__}; "
        "only dict/list/str/int/float/bool/None are hashable content"
    )


def canonical_json(obj: Any) -> str:
    """The one serialization every mlgov content hash is computed over.

    sort_keys + compact separators + ensure_ascii=False, after normalizing to plain JSON types.
    """
    return json.dumps(
        normalize_json(obj, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def canonical_hash(obj: Any) -> str:
    """sha256 hex of `canonical_json(obj)` (UTF-8): a content address for any JSON document."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def is_sha256(value: object) -> bool:
    """True for a lowercase 64-hex sha256 digest."""
    return isinstance(value, str) and bool(_SHA256_RE.match(value))


# --------------------------------------------------------------------------- file hashes


def _hash_file(path: str | os.PathLike[str], hasher: hashlib._Hash) -> str:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex of a file's bytes, streamed (constant memory for any file size)."""
    return _hash_file(path, hashlib.sha256())


def md5_file(path: str | os.PathLike[str]) -> str:
    """md5 hex of a file's raw bytes: what DVC 3 (`hash: md5`) records for a plain file.

    `usedforsecurity=False` because md5 here is an identifier DVC chose, not our security hash
    (and FIPS builds refuse md5 otherwise). Legacy DVC 2 `md5-dos2unix` hashes differ for
    text files with CRLF line ends and are not supported.
    """
    return _hash_file(path, hashlib.md5(usedforsecurity=False))


# --------------------------------------------------------------------------- artifact trees


def _scan(directory: Path) -> tuple[list[str], list[str]]:
    """(regular files, refused entries) under `directory`, as sorted relative posix paths.

    Symlinks and special files are refused rather than followed: a symlink inside an artifact
    directory would let the recorded hash describe bytes that live somewhere else.
    """
    if not directory.exists():
        raise FileNotFoundError(f"artifact directory does not exist: {directory}")
    if not directory.is_dir():
        raise NotADirectoryError(f"not a directory: {directory}")
    files: list[str] = []
    refused: list[str] = []
    for root, dirnames, filenames in os.walk(directory, followlinks=False):
        root_path = Path(root)
        for name in list(dirnames) + filenames:
            full = root_path / name
            rel = full.relative_to(directory).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                refused.append(rel)
            elif stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                refused.append(rel)
    return sorted(files), sorted(refused)


def _refused_problems(directory: Path, refused: Iterable[str]) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for rel in refused:
        kind = "symlink" if (directory / rel).is_symlink() else "special file"
        out.append({"path": rel, "problem": f"refused {kind}", "expected": None, "actual": None})
    return out


def hash_tree(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Manifest {relative posix path: sha256} of every regular file under `directory`, sorted.

    Skips nothing (hidden files included). Empty directories carry no bytes and are not listed.
    Raises IntegrityError if the tree contains a symlink or special file.
    """
    root = Path(directory)
    files, refused = _scan(root)
    if refused:
        problems = _refused_problems(root, refused)
        raise IntegrityError(
            f"refusing to hash {root}: " + "; ".join(f"{p['path']} ({p['problem']})" for p in problems),
            problems,
        )
    return {rel: sha256_file(root / rel) for rel in files}


def _check_manifest(manifest: Mapping[str, str]) -> None:
    bad = [
        f"{k!r}: {v!r}"
        for k, v in manifest.items()
        if not isinstance(k, str) or not k or k.startswith("/") or ".." in PurePosixPath(k).parts or not is_sha256(v)
    ]
    if bad:
        raise ValueError(
            "manifest entries must map a relative posix path to a lowercase sha256 hex; bad: " + ", ".join(bad)
        )


def manifest_digest(manifest: Mapping[str, str]) -> str:
    """One sha256 naming a whole artifact tree: `canonical_hash` of the (sorted) manifest.

    Lets a registry tag, a decision-log record or a model card cite a whole model in one hash.
    """
    _check_manifest(manifest)
    return canonical_hash(dict(sorted(manifest.items())))


def _compare(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[dict[str, str | None]]:
    problems: list[dict[str, str | None]] = []
    for rel in sorted(set(expected) | set(actual)):
        exp, act = expected.get(rel), actual.get(rel)
        if act is None:
            problems.append({"path": rel, "problem": "missing", "expected": exp, "actual": None})
        elif exp is None:
            problems.append({"path": rel, "problem": "unexpected extra file", "expected": None, "actual": act})
        elif exp != act:
            problems.append({"path": rel, "problem": "changed", "expected": exp, "actual": act})
    return problems


def _raise_if(problems: list[dict[str, str | None]], root: Path) -> None:
    if problems:
        lines = [f"{p['path']}: {p['problem']}" for p in problems]
        raise IntegrityError(f"{len(problems)} integrity problem(s) in {root}: " + "; ".join(lines), problems)


def verify_tree(directory: str | os.PathLike[str], expected_manifest: Mapping[str, str]) -> None:
    """Raise IntegrityError naming EVERY changed, missing, unexpected or refused file.

    Call before any deserialization. Note the window between verifying and loading: if an
    attacker can write the directory meanwhile, prefer `copy_verified` and load the copy.
    """
    _check_manifest(expected_manifest)
    root = Path(directory)
    files, refused = _scan(root)
    actual = {rel: sha256_file(root / rel) for rel in files}
    _raise_if(_refused_problems(root, refused) + _compare(expected_manifest, actual), root)


def _copy_hashing(src: Path, dst: Path) -> str:
    """Copy src to dst and return the sha256 of exactly the bytes written."""
    hasher = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        for chunk in iter(lambda: fin.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
            fout.write(chunk)
    return hasher.hexdigest()


def copy_verified(
    directory: str | os.PathLike[str],
    expected_manifest: Mapping[str, str],
    dest: str | os.PathLike[str],
) -> Path:
    """Copy the tree to a fresh `dest`, hashing the bytes as they are copied; verify; return dest.

    Why: closes the check-then-use window of `verify_tree` — the loader deserializes the private
    copy whose bytes were hashed on the way in. `dest` must not exist; on any mismatch it is
    removed and IntegrityError names every problem.
    """
    _check_manifest(expected_manifest)
    root, out = Path(directory), Path(dest)
    files, refused = _scan(root)
    out.mkdir(parents=True, exist_ok=False)
    try:
        actual: dict[str, str] = {}
        for rel in files:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            actual[rel] = _copy_hashing(root / rel, target)
        _raise_if(_refused_problems(root, refused) + _compare(expected_manifest, actual), root)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[str], object]) -> None:
    """Atomic write for writers that need a file name (``df.to_parquet(tmp)``): a temp file in the
    same directory, fsynced, then ``os.replace`` and an fsync of the directory, so readers never see
    half a file and the rename survives a crash. The one atomic-write primitive of mlgov."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        named = _naming(exc, target)
        if named is exc:
            raise
        raise named from exc
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if not isinstance(exc, OSError) or _naming(exc, target) is exc:
            raise
        raise _naming(exc, target) from exc
    fsync_dir(target.parent)


def _naming(exc: OSError, target: Path) -> OSError:
    """A full disk or read-only directory reported against the file being written (not its temp file)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES) and exc.filename != str(target):
        return type(exc)(exc.errno, exc.strerror, str(target))
    return exc


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write_with`)."""

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    atomic_write_with(path, write)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write canonical JSON to `path` atomically."""
    atomic_write_bytes(path, canonical_json(obj).encode("utf-8") + b"\n")


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename/creation inside it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- DVC cache


def dvc_cache_path(cache_dir: str | os.PathLike[str], md5: str) -> Path:
    """Where DVC 3 stores the object for a plain file with this md5:
    ``<cache>/files/md5/<md5[:2]>/<md5[2:]>`` (``cache_dir`` is the cache root, ``.dvc/cache`` by default).
    """
    if not isinstance(md5, str) or not _MD5_RE.match(md5):
        raise ValueError(f"DVC md5 must be 32 lowercase hex characters (plain-file outputs only), got {md5!r}")
    return Path(cache_dir) / "files" / "md5" / md5[:2] / md5[2:]


#: One DVC cache root, or several searched in order (the project's, then the generated-data one).
CacheDirs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def locate_dvc_cached(cache_dirs: CacheDirs, md5: str) -> Path:
    """The object path for ``md5`` in the first of ``cache_dirs`` that holds it (else in the first)."""
    roots = [cache_dirs] if isinstance(cache_dirs, str | os.PathLike) else list(cache_dirs)
    paths = [dvc_cache_path(root, md5) for root in roots]
    return next((p for p in paths if p.is_file() or p.is_symlink()), paths[0])


def verify_dvc_cached(cache_dir: CacheDirs, md5: str) -> tuple[bool, str]:
    """Re-hash the cached bytes for `md5`; (ok, human-readable detail naming the cache file).
    Several cache roots: the first that holds the object is the one verified.

    Why re-hash: DVC trusts its cache; an auditor must not. A flipped byte in the cache would
    otherwise silently change the data a `reproduce` trains on.
    """
    path = locate_dvc_cached(cache_dir, md5)
    if not path.is_file() or path.is_symlink():
        return False, f"DVC cache object for md5 {md5} not found (or not a regular file) at {path}"
    actual = md5_file(path)
    if actual != md5:
        return False, f"DVC cache object {path} has md5 {actual}, expected {md5}: bytes were altered"
    return True, f"DVC cache object {path} re-hashed: md5 {md5} matches"


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) on ``path``, shared across processes; the one place
    mlgov's cross-process serialization (promotion, training runs, monitoring ledgers) comes from."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
