"""Trainer speed against a plain Hugging Face Trainer + peft baseline, and against the machine's own limit.

One run, same model (the default, as Hugging Face weights) and the same samples:
- seedlab's loop (length-bucketed batches, bf16 autocast where the CPU has native bf16), tokens/s;
- transformers.Trainer with peft and default arguments (fp32 on CPU, padding to the longest, no packing);
- torch matrix-product rates in bf16 and fp32, from which the share of the compute-bound limit follows
  (about 4 x parameters FLOPs per trained token for a LoRA step: forward, and backward through activations),
  at the rate of the precision the trainer runs in on this CPU.
Targets (issue 19): >= 3 x the baseline, and >= 45 % of the compute-bound limit.
Run: .venv/bin/python bench/train_throughput.py [--samples N] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

TOPICS = ["bees", "lighthouses", "bread", "tides", "maps", "clocks", "salt", "ferries", "moss", "kites"]


def samples(count: int) -> list[dict[str, Any]]:
    """Chat samples of varied length (30-450 tokens), like SDG output."""
    out = []
    for i in range(count):
        words = " ".join(f"{TOPICS[(i + k) % len(TOPICS)]} matter {k}" for k in range(5 + (i * 37) % 110))
        out.append({"messages": [{"role": "user", "content": f"Tell me about {TOPICS[i % len(TOPICS)]}."},
                                 {"role": "assistant", "content": words}], "metadata": {"unmask": False}})
    return out


def parameter_count(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as weights:
        total = 0
        for name in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
            count = 1
            for size in weights.get_slice(name).get_shape():
                count *= size
            total += count
    return total


def matmul_rate(dtype: Any, size: int = 1024, seconds: float = 2.0) -> float:
    """FLOP/s of square matrix products in `dtype`, timed over about `seconds` (one product at least)."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start, repeats = time.perf_counter(), 0
    while repeats == 0 or time.perf_counter() - start < seconds:
        a @ b
        repeats += 1
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def seedlab_rate(folder: Path, data: list[dict[str, Any]], steps: int) -> float:
    import transformers

    from seedlab.config import TrainConfig
    from seedlab.train._data import DataReport, length_batches, tokenize
    from seedlab.train._loop import PhasePlan, run_phase
    from seedlab.train._model import prepare_model

    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = prepare_model(transformers.AutoModelForCausalLM.from_pretrained(folder), TrainConfig(), False, "cpu")
    examples = tokenize(data, tokenizer, 1024, DataReport("bench"))
    batches = length_batches(examples, 2048)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = PhasePlan("bench", 100, 1e-4, 0.0, steps, 1, 10**9, 0)
        run_phase(model, examples, batches, plan, tokenizer.eos_token_id, Path(tmp), rows.append)
    timed = rows[1:]  # the first step warms up
    return sum(r["tokens"] for r in timed) / sum(r["tokens"] / r["tokens_per_s"] for r in timed)


def baseline_rate(folder: Path, data: list[dict[str, Any]], steps: int) -> float:
    import transformers
    from peft import LoraConfig, get_peft_model

    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    rows = [tokenizer.apply_chat_template(s["messages"], tokenize=True, return_dict=True) for s in data]
    dataset = [{"input_ids": r["input_ids"], "attention_mask": r["attention_mask"]} for r in rows]
    collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm=False)
    class Count(transformers.TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 1:
                self.start = time.perf_counter()

    counter = Count()
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(tmp, per_device_train_batch_size=8, max_steps=steps, report_to=[],
                                              save_strategy="no", logging_strategy="no", use_cpu=True)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                                       callbacks=[counter])
        trainer.train()
        seconds = time.perf_counter() - counter.start
    real_tokens = sum(len(d["input_ids"]) for d in dataset[8: 8 * steps])  # steps 2..N, unpadded tokens
    return real_tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("SEEDLAB_HOME", tempfile.mkdtemp())
    import torch

    from seedlab.backends import DEFAULT_MODEL, hf_copy, resolve_model
    from seedlab.config import load_settings
    from seedlab.train._loop import use_bf16

    settings = load_settings()
    folder = hf_copy(resolve_model(DEFAULT_MODEL, settings.models_path), settings.models_path)
    data = samples(args.samples)
    params = parameter_count(folder / "model.safetensors")
    ours = seedlab_rate(folder, data, args.steps)
    base = baseline_rate(folder, data, args.steps)
    bf16, fp32 = matmul_rate(torch.bfloat16), matmul_rate(torch.float32)
    precision = "bf16" if use_bf16("cpu") else "fp32"  # what the trainer runs in on this CPU
    limit = (bf16 if precision == "bf16" else fp32) / (4 * params)
    print(json.dumps({"seedlab_tokens_per_s": round(ours, 1), "baseline_tokens_per_s": round(base, 1),
                      "precision": precision, "limit_tokens_per_s": round(limit, 1)}))
    print(f"{'':36} {'tokens/s':>9}")
    print(f"{f'seedlab trainer ({precision})':36} {ours:9.1f}")
    print(f"{'HF Trainer + peft, defaults (fp32)':36} {base:9.1f}")
    print(f"speed-up over the baseline: {ours / base:.2f}x (target >= 3: {'met' if ours / base >= 3 else 'MISSED'})")
    print(f"matmul: bf16 {bf16 / 1e9:.1f} GFLOP/s, fp32 {fp32 / 1e9:.1f} GFLOP/s; the trainer runs {precision} here "
          f"(bf16 only where the CPU has native bf16); compute-bound limit {limit:.0f} tokens/s "
          f"(4 x {params / 1e6:.0f}M FLOPs per token at the {precision} rate)")
    print(f"share of the limit: {ours / limit:.1%} (target >= 45 %: {'met' if ours / limit >= 0.45 else 'MISSED'})")


if __name__ == "__main__":
    main()
