"""Many sequences decoded together in one llama.cpp context: one model in memory, a KV-cache stream per sequence
and one batch per decode step, filled continuously: a finished sequence's place goes to the next waiting request,
whichever caller sent it, so concurrent callers share every step. A prompt is read once for all samples of a
request, and the longest prefix some cache already holds is reused (few-shot prompts share long prefixes).

Every step reads all the weights, so sequences stepped together share that traffic, when the weight type has a
batched kernel (the default model decodes from a Q8_0 copy for that: backends/_convert.py, llama_file). llama-cpp-
python's high-level `Llama` decodes one sequence at a time, so this drives its low-level API (llama.cpp's own
`batched` example and server do the same).
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedlab.backends._models import ModelError

COPY_GAIN = 16  # a prefix in another sequence's cache is copied over when it saves more tokens than this
# A gap between running sequences is filled with a throw-away token while there are at most this many gap tokens
# per break they mend: a token costs ~2.7 ms in a step of the default model on 2 cores, an extra pass ~15 ms.
GAP_FILL = 5
TOP_K, MIN_P, TYPICAL_P = 40, 0.05, 1.0  # llama-cpp-python's completion defaults, so outputs match its path


@dataclass
class Job:
    """One sequence to generate: prompt tokens and its own sampling options."""

    tokens: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str] = field(default_factory=list)
    grammar: Any = None  # a llama_cpp.LlamaGrammar


@dataclass
class Output:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"


@dataclass
class _Running:
    job: Job
    future: Future[Output]  # the caller waits on it
    sampler: Any
    position: int  # tokens in this sequence's cache
    pending: int = -1  # the token sampled last, fed at the next step
    pieces: bytearray = field(default_factory=bytearray)
    generated: int = 0


class BatchDecoder:
    """Decodes up to `sequences` jobs at a time on a model already loaded by llama_cpp.Llama."""

    def __init__(self, llm: Any, sequences: int, n_ctx: int, n_batch: int, threads: int,
                 adapter: Path | None = None) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.sequences = sequences
        self.n_batch = n_batch
        self._model = llm.model
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        # A copy of the settings `llm` decodes with (attention kind, cache types): a sequence decodes as it would there.
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx * sequences
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = sequences
        params.kv_unified = False  # one cache stream per sequence: its cells lie as they would alone
        params.n_threads = params.n_threads_batch = threads
        self._ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise ModelError(f"llama.cpp could not make a context for {sequences} sequences of {n_ctx} tokens; "
                             "lower llama_cpp.sequences or llama_cpp.n_ctx")
        self.n_ctx = llama_cpp.llama_n_ctx_seq(self._ctx)
        self._adapter = None
        if adapter is not None:
            self._adapter = llama_cpp.llama_adapter_lora_init(self._model, str(adapter).encode("utf-8"))
            if not self._adapter:
                raise ModelError(f"llama.cpp cannot load the LoRA adapter {adapter}")
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapter)
            llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        self._batch = llama_cpp.llama_batch_init(max(n_batch, sequences), 0, 1)
        self._waiting: deque[tuple[Job, Future[Output]]] = deque()
        self._running: dict[int, _Running] = {}
        self._free = list(range(sequences - 1, -1, -1))
        self._cached: dict[int, list[int]] = {}  # the tokens each sequence's cache holds, kept after it finishes
        self._changed = threading.Condition()  # a step ended, or the driver left
        self._driving = threading.Lock()

    def run(self, jobs: Sequence[Job]) -> list[Output]:
        """Generate every job; outputs in the jobs' order.

        Calls from several threads share the batch: one caller at a time drives the decoding (admitting everyone's
        jobs and stepping every sequence) until its own jobs are done, then another waiting caller takes over. The
        caller's own thread decodes, not a thread of ours: llama.cpp's OpenMP workers of a second thread ran every
        step at half speed once torch had run in the main thread (measured: 19 ms a token instead of 10)."""
        for job in jobs:
            if len(job.tokens) >= self.n_ctx:
                raise ModelError(f"a prompt of {len(job.tokens)} tokens does not fit the context of {self.n_ctx}; "
                                 "shorten the prompt or raise llama_cpp.n_ctx")
        futures: list[Future[Output]] = [Future() for _ in jobs]
        with self._changed:
            self._waiting.extend(zip(jobs, futures, strict=True))
        while not all(future.done() for future in futures):
            if self._driving.acquire(blocking=False):
                try:
                    while not all(future.done() for future in futures):
                        self._tick()
                finally:
                    self._driving.release()
                    with self._changed:
                        self._changed.notify_all()
            else:
                with self._changed:
                    self._changed.wait_for(lambda: all(f.done() for f in futures) or not self._driving.locked())
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if self._adapter is not None:
            self._lib.llama_adapter_lora_free(self._adapter)
            self._adapter = None

    def _tick(self) -> None:
        """Admit every waiting group of jobs that free sequences can hold (their prompts read together), then step
        every running sequence."""
        with self._changed:
            groups: list[list[tuple[Job, Future[Output]]]] = []
            room = len(self._free)
            while room and (group := self._same_prompt(room)):
                groups.append(group)
                room -= len(group)
        try:
            if groups:
                seqs = [[self._take() for _ in group] for group in groups]
                started: dict[int, _Running] = {}
                try:
                    self._start(seqs, groups, started)
                except ModelError as exc:
                    for ids, group in zip(seqs, groups, strict=True):
                        if ids[0] not in started:
                            self._fail(group, exc, ids)
                for seq, state in started.items():
                    if self._finished(state):
                        self._free.append(seq)
                    else:
                        self._running[seq] = state
            if self._running:
                try:
                    self._free += self._step(self._running)
                except ModelError as exc:
                    self._fail([(st.job, st.future) for st in self._running.values()], exc, list(self._running))
        except BaseException as exc:  # a fault while decoding: every caller gets it instead of waiting forever
            with self._changed:
                waiting = list(self._waiting)
                self._waiting.clear()
            busy = [seq for seq in range(self.sequences) if seq not in self._free]
            self._fail(waiting + [(st.job, st.future) for st in self._running.values()], exc, busy)
            raise
        with self._changed:
            self._changed.notify_all()

    def _same_prompt(self, room: int) -> list[tuple[Job, Future[Output]]]:
        """The next waiting jobs that share one prompt (a request's samples), at most `room` of them."""
        group: list[tuple[Job, Future[Output]]] = []
        while self._waiting and len(group) < room and (not group or self._waiting[0][0].tokens == group[0][0].tokens):
            group.append(self._waiting.popleft())
        return group

    def _fail(self, jobs: list[tuple[Job, Future[Output]]], exc: BaseException, seqs: list[int]) -> None:
        """Every job's caller gets `exc`; `seqs` (theirs) are emptied and free again. Other sequences' caches stay:
        they may still be running."""
        memory = self._lib.llama_get_memory(self._ctx)
        for seq in seqs:
            self._lib.llama_memory_seq_rm(memory, seq, -1, -1)
            self._cached.pop(seq, None)
            state = self._running.pop(seq, None)
            if state is not None:
                self._lib.llama_sampler_free(state.sampler)
        self._free += seqs
        for _, future in jobs:
            if not future.done():
                future.set_exception(exc)

    # --- prompts in, one step for all ----------------------------------------------------------------------------

    def _start(self, seqs: list[list[int]], groups: list[list[tuple[Job, Future[Output]]]],
               started: dict[int, _Running]) -> None:
        """Bring each group's shared prompt into its first sequence's cache, reading only what no cache holds yet,
        the groups' prompts together in batches of up to n_batch tokens; then copy that cache to the group's other
        sequences and sample every job's first token from the prompt's last logits. Started jobs go into
        `started` as their batch is read (a failing batch leaves the groups after it out)."""
        memory = self._lib.llama_get_memory(self._ctx)
        entries: list[tuple[int, int, int, bool]] = []  # (token, position, sequence, wants logits), not yet read
        ready: list[tuple[list[int], list[tuple[Job, Future[Output]]], int]] = []  # prompt read at this index
        # A copy between cache streams lands at the next decode, while trimming a stream is immediate: so a prompt
        # copies only from a sequence that nothing here trims before then, not one admitted now unless it is a
        # group's first sequence whose prompt has been read (one waiting to be read is read first when it shares a
        # long prefix).
        fresh = {seq for ids in seqs for seq in ids}

        def read() -> None:
            if entries:
                self._fill(entries)
            for ids, group, index in ready:
                tokens = group[0][0].tokens
                self._cached[ids[0]] = list(tokens)
                fresh.discard(ids[0])
                for seq in ids[1:]:
                    self._copy(ids[0], seq, memory)
                for seq, (job, future) in zip(ids, group, strict=True):
                    state = _Running(job, future, self._sampler(job), len(tokens))
                    self._accept(state, self._lib.llama_sampler_sample(state.sampler, self._ctx, index))
                    started[seq] = state
            entries.clear()
            ready.clear()

        for ids, group in zip(seqs, groups, strict=True):
            tokens, first = group[0][0].tokens, ids[0]
            if any(_common(other[0][0].tokens, tokens) > COPY_GAIN for _, other, _ in ready):
                read()
            done = self._reuse(first, tokens, memory, avoid=fresh - {first})
            self._cached[first] = tokens[:done]
            rest = [(token, done + k, first, done + k == len(tokens) - 1) for k, token in enumerate(tokens[done:])]
            while rest:
                if entries and len(entries) + len(rest) > self.n_batch:
                    read()
                take = self.n_batch - len(entries)
                entries += rest[:take]
                rest = rest[take:]
                if not rest:
                    ready.append((ids, group, len(entries) - 1))
                elif len(entries) >= self.n_batch:
                    read()
        read()

    def _reuse(self, seq: int, tokens: list[int], memory: Any, avoid: set[int]) -> int:
        """Keep the longest start of `tokens` that some cache holds (this sequence's own, or another's copied in,
        not one in `avoid`: few-shot prompts share long prefixes); at least the last token is left to read.
        Tokens kept."""
        own = _common(self._cached.get(seq, []), tokens[:-1])
        source, best = max(((other, _common(held, tokens[:-1])) for other, held in self._cached.items()
                            if other != seq and other not in avoid), key=lambda pair: pair[1], default=(seq, 0))
        if best > own + COPY_GAIN:
            self._copy(source, seq, memory)
            own = best
        self._lib.llama_memory_seq_rm(memory, seq, own, -1)
        return own

    def _copy(self, source: int, target: int, memory: Any) -> None:
        """The source sequence's whole cache stream into the target's (llama.cpp copies across streams only
        whole; the caller trims the tail). The copy lands before the next decode."""
        self._lib.llama_memory_seq_rm(memory, target, -1, -1)
        self._lib.llama_memory_seq_cp(memory, source, target, -1, -1)
        self._cached[target] = list(self._cached.get(source, []))

    def _take(self) -> int:
        """The lowest free sequence: running sequences stay close together (see _step)."""
        seq = min(self._free)
        self._free.remove(seq)
        return seq

    def _step(self, running: dict[int, _Running]) -> list[int]:
        """Feed every running sequence its last token in one batch, sample each one's next; the finished ones.

        With one cache stream per sequence, llama.cpp computes a batch in one pass only when its tokens belong to
        consecutive sequences in order; each break in the run costs a pass of its own (measured: 21 of 32
        sequences, every third one missing, took 2.2x the time of all 32). So the tokens go in sequence order, and
        a gap between running sequences gets a throw-away token of its own (no logits; removed from its cache
        after) while that costs less than the passes it saves."""
        order = sorted(running)
        gaps = [seq for seq in range(order[0], order[-1] + 1) if seq not in running]
        breaks = sum(1 for a, b in itertools.pairwise(order) if b != a + 1)
        if gaps and len(gaps) > GAP_FILL * breaks:
            gaps = []
        filler = {seq: len(self._cached.get(seq, [])) for seq in gaps}
        entries = [(running[seq].pending, running[seq].position, seq, True) if seq in running
                   else (self._cached[seq][-1] if self._cached.get(seq) else 0, filler[seq], seq, False)
                   for seq in sorted([*order, *gaps])]
        self._fill(entries)
        memory = self._lib.llama_get_memory(self._ctx) if filler else None
        for seq, position in filler.items():
            self._lib.llama_memory_seq_rm(memory, seq, position, -1)
        for seq in order:
            self._cached[seq].append(running[seq].pending)
        done = []
        index = {seq: i for i, (_, _, seq, _) in enumerate(entries)}
        for seq in order:
            state = running[seq]
            state.position += 1
            self._accept(state, self._lib.llama_sampler_sample(state.sampler, self._ctx, index[seq]))
            if self._finished(state):
                done.append(seq)
                del running[seq]
        return done

    def _fill(self, tokens: list[tuple[int, int, int, bool]]) -> None:
        """Decode one batch of (token, position, sequence, wants logits)."""
        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, (token, position, seq, logits) in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        code = self._lib.llama_decode(self._ctx, batch)
        if code != 0:
            raise ModelError(f"llama.cpp could not decode a batch of {len(tokens)} tokens (code {code})")

    def _accept(self, state: _Running, token: int) -> None:
        state.pending = token
        if not self._lib.llama_vocab_is_eog(self._vocab, token):
            state.generated += 1
            buffer = ctypes.create_string_buffer(64)
            size = self._lib.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
            state.pieces += buffer.raw[:max(0, size)]

    def _finished(self, state: _Running) -> bool:
        """Record the output of a sequence that has ended (end of turn, a stop string, max tokens or no room)."""
        text = state.pieces.decode("utf-8", errors="ignore")
        cuts = [at for at in (text.find(stop) for stop in state.job.stop if stop) if at >= 0]
        if cuts:
            text, reason = text[:min(cuts)], "stop"
        elif self._lib.llama_vocab_is_eog(self._vocab, state.pending):
            reason = "stop"
        elif state.generated >= state.job.max_tokens or state.position + 1 >= self.n_ctx:
            reason = "length"
        else:
            return False
        state.future.set_result(Output(text, len(state.job.tokens), state.generated, reason))
        self._lib.llama_sampler_free(state.sampler)
        return True

    def _sampler(self, job: Job) -> Any:
        """The chain llama-cpp-python builds for a completion: grammar, then greedy at temperature 0, else top-k,
        typical, top-p, min-p, temperature and a seeded draw."""
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        parts = []
        if job.grammar is not None:
            parts.append(lib.llama_sampler_init_grammar(self._vocab, job.grammar._grammar.encode("utf-8"),
                                                        job.grammar._root.encode("utf-8")))
        if job.temperature <= 0:
            parts.append(lib.llama_sampler_init_greedy())
        else:
            parts += [lib.llama_sampler_init_top_k(TOP_K), lib.llama_sampler_init_typical(TYPICAL_P, 1),
                      lib.llama_sampler_init_top_p(job.top_p, 1), lib.llama_sampler_init_min_p(MIN_P, 1),
                      lib.llama_sampler_init_temp(job.temperature), lib.llama_sampler_init_dist(job.seed)]
        for part in parts:
            lib.llama_sampler_chain_add(chain, part)
        return chain


def _common(a: list[int], b: list[int]) -> int:
    """How many tokens two token lists share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
