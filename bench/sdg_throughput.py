"""SDG speed on the example taxonomy with the default model, against the model's own speed, in one run.

Runs `data generate --taxonomy-base empty` in a scratch home while recording every request, then sends the
same requests (same seeds, so the same tokens) straight to a fresh backend. Prints accepted samples per
minute and pipeline tokens/s as a ratio of raw backend tokens/s (target >= 0.9).
Run: .venv/bin/python bench/sdg_throughput.py [--scale N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator, Sequence

from seedlab.backends import Backend, Request, Result, make_backend


class Recorder:
    """Passes requests through and keeps them for the replay."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.model_id, self.requests = inner, inner.model_id, []  # type: ignore[var-annotated]

    def complete(self, requests: Sequence[Request]) -> list[Result]:
        self.requests.append(list(requests))
        return self.inner.complete(requests)

    def stream(self, request: Request) -> Iterator[str]:
        return self.inner.stream(request)

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["SEEDLAB_HOME"] = home
        from seedlab.config import load_settings
        from seedlab.sdg import GenerateOptions, generate
        from seedlab.workspace import init_workspace

        settings = load_settings()
        init_workspace(settings)
        recorder = Recorder(make_backend(settings, settings.config.sdg.teacher))
        start = time.perf_counter()
        result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=args.scale), teacher=recorder)
        wall = time.perf_counter() - start
        recorder.close()
        tokens = result.stats["teacher_tokens"]
        accepted = sum(leaf["samples"] for leaf in result.stats["leaves"].values())

        replay = make_backend(settings, settings.config.sdg.teacher)
        start = time.perf_counter()
        raw_tokens = sum(r.completion_tokens for batch in recorder.requests for r in replay.complete(batch))
        raw_wall = time.perf_counter() - start
        replay.close()

    pipeline_rate, raw_rate = tokens / wall, raw_tokens / raw_wall
    print(f"example taxonomy, scale {args.scale}, teacher {settings.config.sdg.teacher}, "
          f"{sum(len(b) for b in recorder.requests)} requests")
    print(f"{'':28} {'seconds':>8} {'tokens':>7} {'tokens/s':>9}")
    print(f"{'data generate (pipeline)':28} {wall:8.1f} {tokens:7d} {pipeline_rate:9.1f}")
    print(f"{'same requests, raw backend':28} {raw_wall:8.1f} {raw_tokens:7d} {raw_rate:9.1f}")
    print(f"accepted samples: {accepted} ({accepted / wall * 60:.1f} per minute)")
    ratio = pipeline_rate / raw_rate
    print(f"pipeline/raw tokens/s: {ratio:.3f} (target >= 0.9: {'met' if ratio >= 0.9 else 'MISSED'})")


if __name__ == "__main__":
    main()
