"""Lint, format and type checks as tests, so the README's test command runs them:
``ruff check`` and ``ruff format --check`` over the tree, ``mypy --strict`` over the
pure packages listed in pyproject.toml (``[tool.mypy] files``). Each also proves it
can fail: a planted violation in a scratch copy must be reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_lint_is_clean() -> None:
    p = run("ruff", "check", "--no-cache", ".")
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_format_is_clean() -> None:
    p = run("ruff", "format", "--no-cache", "--check", ".")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_on_the_pure_packages() -> None:
    p = run("mypy", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """pyproject.toml and cluster/api copied, to plant violations in."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "cluster" / "api", tmp_path / "cluster" / "api", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "cluster" / "__init__.py").write_text('"""scratch"""\n')
    return tmp_path


def test_planted_lint_and_format_violations_are_reported(scratch: Path) -> None:
    target = scratch / "cluster" / "api" / "quantity.py"
    target.write_text(target.read_text() + "\nimport os\nx=[1,\n  2]\n")
    lint = run("ruff", "check", "--no-cache", "cluster", cwd=scratch)
    assert lint.returncode != 0 and "F401" in lint.stdout, lint.stdout
    fmt = run("ruff", "format", "--no-cache", "--check", "cluster", cwd=scratch)
    assert fmt.returncode != 0 and "quantity.py" in fmt.stdout, fmt.stdout


def test_planted_type_error_is_reported(scratch: Path) -> None:
    target = scratch / "cluster" / "api" / "timestamps.py"
    target.write_text(target.read_text() + "\n\ndef wrong() -> int:\n    return rfc3339()\n")
    p = run("mypy", "--no-incremental", "cluster/api", cwd=scratch)
    assert p.returncode != 0 and "Incompatible return value" in p.stdout, p.stdout
