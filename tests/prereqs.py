"""Prerequisites of the Node and browser tests, found or reported.

Locally a missing prerequisite skips the test with the reason. With ``CI=true`` it fails the test instead:
CI installs everything, so a skip there would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
CHROMIUM = Path("/usr/bin/chromium")


def require(condition: bool, reason: str) -> None:
    """Skip (or under ``CI=true`` fail) the current test unless ``condition`` holds."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails instead of skipping)")
    pytest.skip(reason)


def node_binary() -> str:
    """The path of ``node``, or skip/fail the test."""
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    assert node is not None
    return node


def require_npm_package(name: str) -> None:
    """Skip/fail unless ``tests/js/node_modules/<name>`` is installed (``make test`` runs npm ci)."""
    require(
        (JS_DIR / "node_modules" / name / "package.json").is_file(),
        f"npm package {name} is missing: run 'npm ci' in {JS_DIR}",
    )


def require_chromium() -> str:
    """The path of Debian's Chromium, or skip/fail the test."""
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium")
    return str(CHROMIUM)
