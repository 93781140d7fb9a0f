"""`seedlab model serve` under load and attack: many concurrent clients, streaming and not, mixed with hostile
requests (malformed JSON, a huge body, absurd max_tokens, wrong and missing API keys, path tricks in the model
name, a client that sends its body slowly), in rounds of a bounded time on loopback.

Prints requests served, statuses by kind, p50/p95 latency of the answered requests, and the server's memory
(VmRSS) at rest and after each round: growth that goes on round after round would be a leak.
The baseline in the same run is the server at rest (its memory before any load).
Run: .venv/bin/python bench/serve_load.py [--clients 32] [--seconds 30] [--rounds 3] [--model NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

KEY = "bench-key-0123456789"
CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Say hello in three words."}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def slow_body(body: bytes) -> Any:
    for i in range(0, len(body), 16):  # a client trickling its request in 16-byte pieces
        await asyncio.sleep(0.05)
        yield body[i:i + 16]


def pick(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One request of the mix: (kind, httpx arguments)."""
    ok = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    chat = {"messages": HELLO, "max_tokens": 8, "temperature": 0}
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("chat", {"url": CHAT, "headers": ok, "content": json.dumps(chat)}),
        ("chat", {"url": CHAT, "headers": ok, "content": json.dumps(chat)}),
        ("stream", {"url": CHAT, "headers": ok, "content": json.dumps({**chat, "stream": True})}),
        ("completion", {"url": "/v1/completions", "headers": ok,
                        "content": json.dumps({"prompt": "One, two,", "max_tokens": 8})}),
        ("models", {"url": "/v1/models", "headers": ok, "method": "GET"}),
        ("bad json", {"url": CHAT, "headers": ok, "content": '{"messages": [,'}),
        ("huge body", {"url": CHAT, "headers": ok, "content": b'{"prompt": "' + b"x" * (5 << 20) + b'"}'}),
        ("absurd max_tokens", {"url": CHAT, "headers": ok, "content": json.dumps({**chat, "max_tokens": 10**12})}),
        ("wrong key", {"url": CHAT, "headers": {**ok, "Authorization": "Bearer nope"}, "content": json.dumps(chat)}),
        ("no key", {"url": CHAT, "headers": {"Content-Type": "application/json"}, "content": json.dumps(chat)}),
        ("model path trick", {"url": CHAT, "headers": ok,
                              "content": json.dumps({**chat, "model": "../../../../etc/passwd"})}),
        ("slow client", {"url": CHAT, "headers": ok, "content": "slow"}),
    ]
    return rng.choice(kinds)


async def client(base: str, until: float, seed: int, log: list[tuple[str, int, float]]) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.monotonic() < until:
            kind, args = pick(rng)
            method = args.pop("method", "POST")
            if args.get("content") == "slow":
                args["content"] = slow_body(json.dumps({"messages": HELLO, "max_tokens": 4}).encode())
            start = time.monotonic()
            try:
                if kind == "stream":
                    async with http.stream(method, **args) as response:
                        async for _ in response.aiter_lines():
                            pass
                        status = response.status_code
                else:
                    status = (await http.request(method, **args)).status_code
            except httpx.HTTPError:
                status = -1  # the connection failed: counted, never expected
            log.append((kind, status, time.monotonic() - start))


async def round_(base: str, clients: int, seconds: float) -> list[tuple[str, int, float]]:
    log: list[tuple[str, int, float]] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(base, until, seed, log) for seed in range(clients)))
    return log


def report(name: str, log: list[tuple[str, int, float]]) -> dict[str, Any]:
    by_kind: dict[str, Counter[int]] = defaultdict(Counter)
    for kind, status, _ in log:
        by_kind[kind][status] += 1
    answered = sorted(t for kind, status, t in log if status == 200 and kind in ("chat", "stream", "completion"))
    p50 = statistics.median(answered) if answered else float("nan")
    p95 = answered[int(0.95 * (len(answered) - 1))] if answered else float("nan")
    print(f"\n{name}: {len(log)} requests, {len(answered)} generations answered, p50 {p50:.2f} s, p95 {p95:.2f} s")
    print(f"{'kind':20} statuses")
    for kind in sorted(by_kind):
        print(f"{kind:20} " + ", ".join(f"{s}: {n}" for s, n in sorted(by_kind[kind].items())))
    return {"requests": len(log), "answered": len(answered), "p50_s": round(p50, 3), "p95_s": round(p95, 3),
            "statuses": {k: dict(v) for k, v in by_kind.items()},
            "server_errors": sum(n for v in by_kind.values() for s, n in v.items() if s >= 500 or s < 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="model to serve (default: the configured default)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="seedlab-serve-load-"))
    port = free_port()
    env = {**os.environ, "SEEDLAB_HOME": str(home), "SEEDLAB_API_KEY": KEY}
    command = [sys.executable, "-m", "seedlab", "model", "serve", "--port", str(port)]
    command += ["--model", args.model] if args.model else []
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until the model has loaded and the server answers
            try:
                if httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {server.stdout.read() if server.stdout else ''}")
            time.sleep(0.5)
        memory = [rss_mib(server.pid)]
        rounds = []
        for number in range(1, args.rounds + 1):
            rounds.append(report(f"round {number}", asyncio.run(round_(base, args.clients, args.seconds))))
            memory.append(rss_mib(server.pid))
        log_file = home / "logs" / "prompts.jsonl"
        logs = list(log_file.parent.glob("prompts.jsonl*")) if log_file.parent.exists() else []
        key_in_log = any(KEY in p.read_text() for p in logs)
        steps = ", ".join(f"{b - a:+.0f}" for a, b in zip(memory, memory[1:], strict=False))
        print(f"\nserver memory (VmRSS): at rest {memory[0]:.0f} MiB, after the rounds "
              f"{', '.join(f'{m:.0f}' for m in memory[1:])} MiB (change per round: {steps} MiB)")
        print(f"clients {args.clients}, {args.rounds} rounds of {args.seconds:.0f} s; 5xx or failed connections: "
              f"{sum(r['server_errors'] for r in rounds)}; API key in the prompt log: {key_in_log}")
        print(json.dumps({"clients": args.clients, "seconds": args.seconds, "rounds": rounds,
                          "rss_mib": [round(m) for m in memory], "key_in_log": key_in_log}))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
