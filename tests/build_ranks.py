"""One rank of a two-rank `seedlab build` under torchrun, on the fake teacher and a tiny model (run by
tests/test_build.py; not a test itself)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_build import FakeModels, known_answers, tiny_build_settings  # noqa: E402

from seedlab.build import BuildOptions, build  # noqa: E402

settings = tiny_build_settings()
result = build(settings, BuildOptions(), lambda _line: None, models=FakeModels(settings, known_answers(settings)))
print(f"rank finished: {'release ' + str(result.release) if result else 'follower'}")
