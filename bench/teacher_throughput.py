"""Generation speed of seedlab's llama.cpp backend against raw llama-cpp-python calls, in one run.

Prints generated tokens/s of each, their ratio (target: seedlab >= 0.95 x raw), then batched decoding (several
sequences stepped together in one context, `llama_cpp.sequences`) at each batch size against one stream under
greedy decoding, with whether every output equals the one-stream output (target: >= 2.5 x on 2 cores), for the
file llama.cpp decodes (`llama_cpp.weights`: the default model converted to Q8_0) and, with --weights as-is auto,
for the packaged Q4_1 file too, and with --flash-attn on off, with llama.cpp's fused attention and without (default:
`llama_cpp.flash_attn`, on); then parallel model slots (`llama_cpp.slots`, what `model serve` streams with).
Run: .venv/bin/python bench/teacher_throughput.py [--prompts N] [--max-tokens N] [--rounds N] [--sequences 2 4 8]
     [--weights as-is auto] [--flash-attn on off]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

from seedlab.backends import Request, llama_file, resolve_model
from seedlab.backends._llamacpp import LlamaCppBackend, available_cores
from seedlab.config import load_settings

TOPICS = ["a lighthouse keeper", "volcanoes", "bread baking", "the moon", "a chess opening", "bees",
          "river ferries", "winter gardens", "paper maps", "old clocks", "sea salt", "mountain huts"]


def requests(count: int, max_tokens: int) -> list[Request]:
    return [Request(messages=[{"role": "user", "content": f"Write a short paragraph about {TOPICS[i % len(TOPICS)]}."}],
                    max_tokens=max_tokens, temperature=0.7, seed=100 + i) for i in range(count)]


def raw_llama(path: Path, reqs: list[Request], threads: int, n_ctx: int, n_batch: int, flash_attn: bool
              ) -> tuple[int, float]:
    """The same requests through llama_cpp.Llama directly: (generated tokens, seconds)."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=threads,
                n_threads_batch=threads, seed=0, flash_attn=flash_attn, verbose=False)
    start = time.perf_counter()
    tokens = 0
    for r in reqs:
        out = llm.create_chat_completion(messages=r.messages, max_tokens=r.max_tokens, temperature=r.temperature,
                                         top_p=r.top_p, seed=r.seed, stop=None)
        tokens += out["usage"]["completion_tokens"]
    seconds = time.perf_counter() - start
    llm.close()
    return tokens, seconds


def seedlab_backend(path: Path, reqs: list[Request], threads: int, n_ctx: int, n_batch: int, flash_attn: bool,
                    slots: int = 1, sequences: int = 1) -> tuple[int, float]:
    tokens, seconds, _ = timed_texts(path, reqs, threads, n_ctx, n_batch, flash_attn, slots, sequences)
    return tokens, seconds


def timed_texts(path: Path, reqs: list[Request], threads: int, n_ctx: int, n_batch: int, flash_attn: bool,
                slots: int = 1, sequences: int = 1) -> tuple[int, float, list[list[str]]]:
    backend = LlamaCppBackend(path, n_ctx=n_ctx, n_batch=n_batch, threads=threads, slots=slots, sequences=sequences,
                              flash_attn=flash_attn)
    start = time.perf_counter()
    results = backend.complete(reqs)
    seconds = time.perf_counter() - start
    backend.close()
    return sum(r.completion_tokens for r in results), seconds, [r.texts for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    parser.add_argument("--sequences", type=int, nargs="+", default=[2, 4, 8, 16], help="batch sizes to measure")
    parser.add_argument("--skip-raw", action="store_true", help="only the batched and slot comparisons")
    parser.add_argument("--weights", nargs="+", help="llama_cpp.weights values to measure batched decoding with "
                        "(default: the configured one)")
    parser.add_argument("--flash-attn", nargs="+", choices=["on", "off"],
                        help="measure batched decoding with llama.cpp's fused attention on, off or both "
                        "(default: llama_cpp.flash_attn)")
    args = parser.parse_args()
    settings = load_settings()
    llama = settings.config.llama_cpp
    ref = resolve_model(settings.config.model.default, settings.models_path)
    path = llama_file(ref, settings.models_path, llama.weights)
    cores = llama.threads or available_cores()
    reqs = requests(args.prompts, args.max_tokens)

    fa = llama.flash_attn
    ones: dict[str, float] = {}
    bests: dict[str, float] = {}
    for weights in args.weights or [llama.weights]:
        for flash in [v == "on" for v in args.flash_attn] if args.flash_attn else [fa]:
            name = f"{weights} weights, flash attention {'on' if flash else 'off'}"
            ones[name], bests[name] = batched(llama_file(ref, settings.models_path, weights), name, args, cores,
                                              llama.n_ctx, llama.n_batch, flash)
    if len(ones) > 1:
        print("best batched decoding against one stream of each: " + "; ".join(
            f"{b}: {bests[b] / ones[w]:.2f}x one stream of {w}" for b in bests for w in ones))
    if args.skip_raw:
        return
    raw_rates, ours_rates = [], []
    for round_ in range(args.rounds):  # alternate who goes first so drift in machine load hits both alike
        runs = [("raw", raw_llama), ("ours", seedlab_backend)]
        for name, run in runs if round_ % 2 == 0 else runs[::-1]:
            tokens, seconds = run(path, reqs, cores, llama.n_ctx, llama.n_batch, fa)
            (raw_rates if name == "raw" else ours_rates).append(tokens / seconds)
    raw, ours = statistics.median(raw_rates), statistics.median(ours_rates)
    ratio = statistics.median(o / r for o, r in zip(ours_rates, raw_rates, strict=True))
    print(f"model {path.name}, {cores} threads, {args.prompts} prompts x {args.max_tokens} max tokens, "
          f"median of {args.rounds} rounds")
    print(f"{'path':34} {'tokens/s':>9}")
    print(f"{'raw llama-cpp-python':34} {raw:9.1f}")
    print(f"{'seedlab LlamaCppBackend':34} {ours:9.1f}")
    print(f"ratio seedlab/raw (median of per-round ratios): {ratio:.3f} "
          f"(target >= 0.95: {'met' if ratio >= 0.95 else 'MISSED'}); per round: "
          + ", ".join(f"{o / r:.2f}" for o, r in zip(ours_rates, raw_rates, strict=True)))

    if cores >= 2:
        one_rates, par_rates = [], []
        for round_ in range(args.rounds):
            for slots in (1, cores) if round_ % 2 == 0 else (cores, 1):
                tokens, seconds = seedlab_backend(path, reqs, cores, llama.n_ctx, llama.n_batch, fa, slots=slots)
                (one_rates if slots == 1 else par_rates).append(tokens / seconds)
        one, par = statistics.median(one_rates), statistics.median(par_rates)
        print(f"{'one stream (1 slot x ' + str(cores) + ' threads)':34} {one:9.1f}")
        print(f"{'parallel (' + str(cores) + ' slots x 1 thread)':34} {par:9.1f}")
        print(f"parallel decoding speed-up: {par / one:.2f}x")


def batched(path: Path, name: str, args: argparse.Namespace, cores: int, n_ctx: int, n_batch: int, flash_attn: bool
            ) -> tuple[float, float]:
    """One stream against each batch size, greedy, rounds alternating; outputs compared with one stream's.
    (one stream's tokens/s, the best batch size's)"""
    greedy = [dataclasses.replace(r, temperature=0.0) for r in requests(args.prompts, args.max_tokens)]
    sizes = [1, *args.sequences]
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    same: dict[int, int] = dict.fromkeys(sizes, 0)
    reference: list[list[str]] = []
    for round_ in range(args.rounds):
        for n in sizes if round_ % 2 == 0 else sizes[::-1]:
            tokens, seconds, texts = timed_texts(path, greedy, cores, n_ctx, n_batch, flash_attn, sequences=n)
            rates[n].append(tokens / seconds)
            if n == 1 and not reference:
                reference = texts
            if reference:
                same[n] += sum(a == b for a, b in zip(texts, reference, strict=True))
    one = statistics.median(rates[1])
    print(f"batched decoding, {path.name} ({name}), greedy, {args.prompts} prompts x "
          f"{args.max_tokens} max tokens, {cores} threads, median of {args.rounds} rounds")
    print(f"{'sequences':>9} {'tokens/s':>9} {'x one stream':>13} {'outputs = one stream':>21}")
    for n in sizes:
        rate = statistics.median(rates[n])
        print(f"{n:9} {rate:9.1f} {rate / one:12.2f}x {same[n]:>12}/{args.prompts * args.rounds}")
    best = max(sizes, key=lambda n: statistics.median(rates[n]))
    print(f"best: {best} sequences, {statistics.median(rates[best]) / one:.2f}x one stream (target >= 2.5)")
    return one, statistics.median(rates[best])


if __name__ == "__main__":
    main()
