"""Every test runs with its own SEEDLAB_HOME, so nothing touches the user's files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def seedlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    monkeypatch.delenv("SEEDLAB_DEBUG", raising=False)
    return home
