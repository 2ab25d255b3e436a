"""Code versions: a normalised-AST hash over a stage's module and everything it imports."""

from __future__ import annotations

from pathlib import Path

from mlgov_assets.core import provenance
from mlgov_assets.core.provenance import PACKAGE_DIR, _core_closure, _normalised_ast_hash, source_version

MODULE = '''"""A module docstring."""

import math


def area(r):
    """Docstring."""
    return math.pi * r * r  # a comment
'''


def _hash(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return _normalised_ast_hash(path)


def test_comments_docstrings_and_formatting_do_not_change_the_version(tmp_path: Path) -> None:
    base = _hash(tmp_path, "a.py", MODULE)
    cosmetic = MODULE.replace("# a comment", "# another comment").replace('"""Docstring."""', '"""Other words."""')
    cosmetic = cosmetic.replace("math.pi * r * r", "math.pi*r*r").replace('"""A module docstring."""\n', "")
    assert _hash(tmp_path, "b.py", cosmetic) == base


def test_a_change_of_logic_changes_the_version(tmp_path: Path) -> None:
    base = _hash(tmp_path, "a.py", MODULE)
    assert _hash(tmp_path, "b.py", MODULE.replace("r * r", "r * 2")) != base
    # a function whose only statement is its docstring still differs from one that returns
    assert _hash(tmp_path, "c.py", MODULE.replace("    return math.pi * r * r  # a comment\n", "")) != base


def test_the_closure_follows_lazy_imports_into_core_but_not_other_stages() -> None:
    rel = {p.relative_to(PACKAGE_DIR).as_posix() for p in _core_closure([PACKAGE_DIR / "defs" / "training.py"])}
    assert "defs/training.py" in rel
    # imported inside function bodies (heavy modules are imported lazily) and through resources.py
    assert {"core/models/training.py", "core/models/registry.py", "resources.py"} <= rel
    assert not any(r.startswith("defs/") and r != "defs/training.py" for r in rel)


def test_every_stage_version_changes_when_a_module_it_uses_changes(monkeypatch) -> None:
    before = source_version("defs/training.py")
    real = provenance._normalised_ast_hash
    target = (PACKAGE_DIR / "core" / "models" / "registry.py").resolve()
    monkeypatch.setattr(provenance, "_normalised_ast_hash", lambda p: "edited" if p == target else real(p))
    assert source_version("defs/training.py") != before
