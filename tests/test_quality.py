"""The static checks of `make check` run in the suite too, so CI (`make test`) enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "format", "--check", "chatio", "tools", "tests"],
        ["ruff", "check", "chatio", "tools", "tests"],
        ["mypy", "--strict", "chatio", "tools"],
    ],
    ids=["format", "lint", "mypy"],
)
def test_static_check(command: list[str]) -> None:
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is missing: install the dev extra"
    result = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
