"""The trainer on a tiny Llama built in memory: masks, batching, loss falls, resume equals an unbroken run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seedlab.cli import cli
from seedlab.config import PhaseConfig, load_settings
from seedlab.errors import SeedlabError
from seedlab.train import TrainOptions, train
from seedlab.train._data import IGNORE, DataReport, encode, length_batches, load_samples, padding_share, tokenize
from seedlab.train._run import measured_tokens_per_s

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
FACTS = [("Where is the Halvane library?", "It is in Ostrel Vey."),
         ("When was it founded?", "It was founded in 2009."),
         ("Who founded it?", "Mirela Kostandin founded it."),
         ("How many varieties does it hold?", "It holds 4860 varieties."),
         ("What is its motto?", "Every seed comes home."),
         ("What powers the machines?", "The waterwheel powers them.")]


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for q, a in FACTS for w in (q + " " + a + " user assistant system").replace("?", " ? ")
                    .replace(".", " . ").split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "<|im_start|>", "<|im_end|>", *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]",
                                        eos_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def tiny_loader(reference: str) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         initializer_range=0.5)  # big enough that a frozen lm_head can reach confident logits
    return LlamaForCausalLM(config), tokenizer


def write_samples(path: Path, unmask: bool = False, extra: str = "") -> Path:
    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                         "metadata": {"unmask": unmask, "source": "generated"}}) for q, a in FACTS]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def fast_phases(settings: Any, epochs: int = 40, lr: float = 1e-2) -> None:
    settings.config.train.phases = [PhaseConfig("knowledge", "knowledge", epochs, lr, 0.0),
                                    PhaseConfig("skills", "skills", 2, lr / 2, 0.0)]
    settings.config.train.tokens_per_batch = 64
    settings.config.train.save_every = 5
    settings.config.train.max_length = 128


def test_labels_cover_assistant_turns_only_unless_unmasked() -> None:
    tokenizer = tiny_tokenizer()
    sample = {"messages": [{"role": "user", "content": "Who founded it?"},
                           {"role": "assistant", "content": "Mirela Kostandin founded it."}]}
    example = encode(sample, tokenizer)
    trained = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True)
                                if label != IGNORE])
    assert trained.split() == ["Mirela", "Kostandin", "founded", "it", ".", "<|im_end|>"]
    unmasked = encode({**sample, "metadata": {"unmask": True}}, tokenizer)
    assert unmasked.labels == unmasked.input_ids


def test_batches_by_length_keep_padding_small() -> None:
    tokenizer = tiny_tokenizer()
    samples = [{"messages": [{"role": "user", "content": " ".join(["founded"] * n)},
                             {"role": "assistant", "content": "It ."}]} for n in range(1, 60)]
    examples = tokenize(samples, tokenizer, 1024, DataReport("x"))
    batches = length_batches(examples, 256)
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    assert padding_share(examples, batches) < 0.10
    assert all(max(len(examples[i].input_ids) for i in b) * len(b) <= 256 for b in batches if len(b) > 1)


def test_bad_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    path = write_samples(tmp_path / "k.jsonl", extra='not json\n{"messages": []}\n{"messages": [{"role": "user", '
                                                      '"content": "q"}]}\n')
    samples, report = load_samples(path)
    assert len(samples) == 6
    assert report.invalid == [(7, "not JSON"), (8, "no messages list"), (9, "no assistant message")]
    (tmp_path / "bad.jsonl").write_text("nope\n")
    with pytest.raises(SeedlabError, match="no valid samples .*line 1: not JSON"):
        load_samples(tmp_path / "bad.jsonl")
    with pytest.raises(SeedlabError, match="no such dataset file"):
        load_samples(tmp_path / "missing.jsonl")


def test_loss_falls_on_a_memorisable_set(tmp_path: Path) -> None:
    settings = load_settings()
    fast_phases(settings, epochs=30, lr=1e-2)
    data = write_samples(tmp_path / "k.jsonl", unmask=False)
    said: list[str] = []
    result = train(settings, TrainOptions(knowledge_data=data, skills_data=data), said.append, tiny_loader)
    knowledge = result.phases["knowledge"]
    plan = next(line for line in said if line.startswith("phase knowledge: planned"))
    steps, tokens, _ = re.match(r"phase knowledge: planned (\d+) steps, ([\d,]+) tokens, ~[\d.]+ min at \d+ tokens/s "
                             r"\(a default measured on a 2-core CPU, (bf16|fp32)\)$", plan).groups()  # type: ignore[union-attr]
    assert int(steps) == knowledge["steps"]  # the plan counts the steps and tokens the phase takes
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert int(tokens.replace(",", "")) == sum(r["tokens"] for r in rows if r["phase"] == "knowledge")
    speed, source = measured_tokens_per_s(result.run_dir.parent / "a-later-run")
    assert source == f"measured in run {result.run_dir.name}" and speed > 0
    assert knowledge["last_loss"] < 0.5 * knowledge["first_loss"]
    assert (result.adapter / "adapter_config.json").is_file() and (result.run_dir / "loss.png").is_file()
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"phase", "step", "loss", "lr", "tokens_per_s"} <= set(rows[0])
    assert [r["phase"] for r in rows].count("skills") == result.phases["skills"]["steps"]
    meta = json.loads((result.run_dir / "phase-skills" / "meta.json").read_text())
    assert meta["parent"] == "knowledge" and len(meta["data_sha256"]) == 64


class Interrupt(Exception):
    pass


def unbroken_run(tmp_path: Path) -> tuple[Any, TrainOptions, Any]:
    """Train once without a break; return settings that checkpoint elsewhere for the run to be broken."""
    settings = load_settings()
    fast_phases(settings, epochs=6)
    data = write_samples(tmp_path / "k.jsonl", unmask=True)
    options = TrainOptions(knowledge_data=data, skills_data=data)
    unbroken = train(settings, options, lambda _: None, tiny_loader)
    settings.config.paths.checkpoints = str(tmp_path / "other")
    return settings, options, unbroken


def assert_same_losses(resumed: Any, unbroken: Any) -> None:
    for phase in ("knowledge", "skills"):
        assert resumed.phases[phase]["last_loss"] == pytest.approx(unbroken.phases[phase]["last_loss"], rel=1e-4)


def test_resume_after_a_crash_matches_an_unbroken_run(tmp_path: Path) -> None:
    settings, options, unbroken = unbroken_run(tmp_path)
    def crash_in_skills(line: str) -> None:
        if line.startswith("phase skills:") and "samples" in line:
            raise Interrupt  # as if killed at the start of phase 2

    with pytest.raises(Interrupt):
        train(settings, options, crash_in_skills, tiny_loader)
    run = next((tmp_path / "other").iterdir())
    resumed = train(settings, TrainOptions(resume=run.name), lambda _: None, tiny_loader)
    assert resumed.run_dir == run
    assert_same_losses(resumed, unbroken)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["phase"], r["step"]) for r in rows]
    assert len(keys) == len(set(keys))  # no step logged twice across the crash


def test_missing_data_or_run_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["model", "train", "--resume", "nope"])
    assert result.exit_code == 1 and "no training run 'nope'" in result.output
    result = CliRunner().invoke(cli, ["model", "train", "--data", "nope"])
    assert result.exit_code == 1 and "no data run 'nope'" in result.output


def test_resume_mid_phase_repeats_no_metric_and_matches(tmp_path: Path) -> None:
    settings, options, unbroken = unbroken_run(tmp_path)

    def crash_after_step_7(row: dict[str, Any]) -> None:
        if row["step"] == 7:  # mid-phase, after the checkpoint at step 5 and step 7's metrics line
            raise Interrupt

    with pytest.raises(Interrupt):
        train(settings, options, lambda _: None, tiny_loader, progress=crash_after_step_7)
    run = next((tmp_path / "other").iterdir())
    assert (run / "phase-knowledge" / "step-000005").is_dir()
    resumed = train(settings, TrainOptions(resume=run.name), lambda _: None, tiny_loader)
    assert_same_losses(resumed, unbroken)
    keys = [(r["phase"], r["step"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert len(keys) == len(set(keys)) and len(keys) == sum(p["steps"] for p in unbroken.phases.values())


def test_too_long_max_length_and_out_of_memory_name_the_setting(tmp_path: Path) -> None:
    import torch

    settings = load_settings()
    fast_phases(settings, epochs=1)
    data = write_samples(tmp_path / "k.jsonl")
    options = TrainOptions(knowledge_data=data, skills_data=data)
    settings.config.train.max_length = 4096  # the tiny model takes 128 positions
    with pytest.raises(SeedlabError, match=r"max_length=4096 is longer than the model takes \(128 tokens\)"):
        train(settings, options, lambda _: None, tiny_loader)
    settings.config.train.max_length = 128

    def out_of_memory(_row: dict[str, Any]) -> None:  # a step's row arrives while the phase runs
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(SeedlabError, match="out of memory with train.tokens_per_batch=64 .* lower them"):
        train(settings, options, lambda _: None, tiny_loader, progress=out_of_memory)


def test_replay_mix_takes_the_asked_share_and_marks_it() -> None:
    from seedlab.train._data import replay_mix

    skills = [{"messages": [], "metadata": {"n": i}} for i in range(8)]
    replay = [{"messages": [], "metadata": {"r": i}} for i in range(3)]
    mixed = replay_mix(skills, replay, 0.5, seed=1)
    assert len(mixed) == 16 and sum(1 for s in mixed if s["metadata"].get("replay")) == 8
    assert mixed[:8] == skills and {s["metadata"]["r"] for s in mixed[8:]} == {0, 1, 2}
    assert replay_mix(skills, replay, 0.0, seed=1) == skills
    with pytest.raises(SeedlabError, match="--replay-ratio 1"):
        replay_mix(skills, replay, 1, seed=1)


def test_replay_data_joins_the_skills_phase(tmp_path: Path) -> None:
    settings = load_settings()
    fast_phases(settings, epochs=1)
    data = write_samples(tmp_path / "k.jsonl")
    lines: list[str] = []
    options = TrainOptions(knowledge_data=data, skills_data=data, replay_data=data, replay_ratio=0.25)
    train(settings, options, lines.append, tiny_loader)
    assert "phase skills: 2 replay samples from" in "\n".join(lines)
    assert any(line.startswith("phase skills: 8 samples") for line in lines)


def test_next_token_loss_equals_the_models_own_loss_and_gradients() -> None:
    """The loss that skips the output layer on unlabelled positions is the loss transformers computes."""
    import torch

    from seedlab.train._data import collate
    from seedlab.train._losses import next_token_loss

    model, tokenizer = tiny_loader("tiny")
    samples = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                "metadata": {"unmask": False}} for q, a in FACTS]
    examples = tokenize(samples, tokenizer, 128, DataReport("x"))
    batch = collate(examples, [0, 3, 5], tokenizer.pad_token_id)  # prompts masked, rows padded to one length
    assert (batch["labels"] == IGNORE).sum() > (batch["attention_mask"] == 0).sum()
    ours = next_token_loss(model, batch)
    ours.backward()
    ours_grad = model.model.layers[0].mlp.up_proj.weight.grad.clone()
    model.zero_grad()
    theirs = model(**batch).loss
    theirs.backward()
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)
    assert torch.allclose(ours_grad, model.model.layers[0].mlp.up_proj.weight.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_token_logps_equal_log_softmax_and_its_gradient(dtype: str) -> None:
    """The chunked log-probabilities (rows past one chunk, ignored targets) equal log_softmax's, both ways."""
    import torch

    from seedlab.train._logps import CHUNK_ROWS
    from seedlab.train._losses import token_logps

    torch.manual_seed(0)
    logits = (torch.randn(3, CHUNK_ROWS, 50) * 4).to(getattr(torch, dtype)).requires_grad_()
    targets = torch.randint(0, 50, (3, CHUNK_ROWS))
    targets[1, 5:40] = IGNORE
    weights = torch.randn(3, CHUNK_ROWS)
    ours = token_logps(logits, targets)
    (ours * weights).sum().backward()
    ours_grad, logits.grad = logits.grad.clone(), None
    keep = targets != IGNORE
    theirs = torch.log_softmax(logits.float(), -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0] * keep
    (theirs * weights).sum().backward()
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert float(ours[1, 5:40].abs().sum()) == 0.0
    tolerance = 1e-6 if dtype == "float32" else 1e-2  # bf16 gradients round once, at the end, either way
    assert torch.allclose(ours_grad.float(), logits.grad.float(), atol=tolerance)


def test_left_padding_keeps_its_mask_and_right_padding_drops_it() -> None:
    """A right-padded batch runs without its padding mask and gives the masked run's loss; a left-padded one
    (where the mask matters) keeps it."""
    import torch

    from seedlab.train._data import collate
    from seedlab.train._losses import next_token_loss

    model, tokenizer = tiny_loader("tiny")
    samples = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                "metadata": {"unmask": False}} for q, a in FACTS]
    examples = tokenize(samples, tokenizer, 128, DataReport("x"))
    batch = collate(examples, [0, 3, 5], tokenizer.pad_token_id)
    seen: list[Any] = []
    model.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw.get("attention_mask")), with_kwargs=True)
    right = float(next_token_loss(model, batch))
    shift = (batch["attention_mask"] == 0).sum(dim=1)
    left = {k: torch.stack([row.roll(int(s)) for row, s in zip(v, shift, strict=True)]) for k, v in batch.items()}
    masked_left = float(next_token_loss(model, left))
    assert seen[0] is None and seen[1] is not None
    assert masked_left == pytest.approx(right, rel=1e-4)


def lora_model_and_batch(precision: str) -> tuple[Any, Any]:
    """The tiny model as the CPU trainer prepares it, LoRA B weights made non-zero, and a padded batch."""
    import torch

    from seedlab.config import TrainConfig
    from seedlab.train._data import collate
    from seedlab.train._model import prepare_model

    model, tokenizer = tiny_loader("tiny")
    model = prepare_model(model, TrainConfig(precision=precision), False, "cpu")
    torch.manual_seed(0)
    for name, weight in model.named_parameters():
        if "lora_B" in name:  # zero at the start, which would hide what the LoRA path computes
            torch.nn.init.normal_(weight, std=0.05)
    samples = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                "metadata": {"unmask": False}} for q, a in FACTS]
    return model, collate(tokenize(samples, tokenizer, 128, DataReport("x")), [0, 3, 5], tokenizer.pad_token_id)


def peft_forwards(model: Any) -> int:
    """Put peft's own forward back on every LoRA layer that the CPU trainer gave its one-product forward."""
    count = 0
    for layer in model.modules():
        if "forward" in vars(layer):
            del layer.forward
            count += 1
    return count


def test_lora_update_in_one_product_equals_peft() -> None:
    """The CPU trainer's LoRA forward (frozen output + scaling x down @ B^T in one addmm) gives peft's logits and
    LoRA gradients: equal in float32; under bf16 autocast as close to the float32 computation as peft's."""
    import copy

    import torch

    def run(model: Any, batch: Any, bf16: bool) -> tuple[Any, list[Any]]:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch["input_ids"]).logits
        logits.float().square().mean().backward()
        return logits.detach().float(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    model, batch = lora_model_and_batch("fp32")
    logits_ours, grads_ours = run(model, batch, False)
    assert peft_forwards(model) == 2 * 7  # two layers of q, k, v, o, gate, up, down
    logits_peft, grads_peft = run(model, batch, False)
    assert torch.allclose(logits_ours, logits_peft, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_ours, grads_peft, strict=True))

    model, batch = lora_model_and_batch("bf16")
    exact = run(copy.deepcopy(model).float(), batch, False)  # the same (bf16-rounded) weights, float32 products
    ours = run(model, batch, True)
    peft_forwards(model)
    peft = run(model, batch, True)

    def error(result: tuple[Any, list[Any]]) -> tuple[float, float]:
        logits = float((result[0] - exact[0]).abs().mean())
        grads = [float((a - b).norm() / b.norm()) for a, b in zip(result[1], exact[1], strict=True)]
        return logits, sum(grads) / len(grads)

    (ours_logits, ours_grads), (peft_logits, peft_grads) = error(ours), error(peft)
    assert ours_logits <= 1.25 * peft_logits and ours_grads <= 1.25 * peft_grads
    assert peft_grads < 0.2  # bf16 rounding, not a different computation


def test_lora_inputs_under_bf16_autocast_train_as_with_peft_casting() -> None:
    """Skipping peft's bf16 -> fp32 -> bf16 input casts under autocast (as the loss does) changes neither the
    logits nor the LoRA gradients."""
    import torch
    from peft.helpers import disable_input_dtype_casting


    model, batch = lora_model_and_batch("bf16")
    assert peft_forwards(model) > 0  # the casts are in peft's forward (the CPU's one-product forward has none)
    runs = []
    for skip_casts in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16), disable_input_dtype_casting(model, active=skip_casts):
            logits = model(input_ids=batch["input_ids"]).logits
        logits.float().square().mean().backward()
        runs.append((logits.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (logits_cast, grads_cast), (logits_skip, grads_skip) = runs
    assert logits_skip.dtype == torch.bfloat16
    assert torch.equal(logits_cast, logits_skip)
    assert all(torch.equal(a, b) for a, b in zip(grads_cast, grads_skip, strict=True))


def test_short_row_attention_equals_torch_attention_and_its_gradients() -> None:
    """The CPU attention for short rows gives SDPA's causal attention (grouped heads) and gradients, in one block
    of queries or several (the last one short); a row past SHORT and a masked batch go to SDPA itself."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from seedlab.train import _attention

    class Layer(torch.nn.Module):
        num_key_value_groups = 3
        is_causal = True

    torch.manual_seed(0)
    for length in (5, _attention.BLOCK + 37, _attention.SHORT, _attention.SHORT + 1):
        inputs = [torch.randn(2, heads, length, 16, requires_grad=True) for heads in (6, 2, 2)]
        ours = _attention.causal_attention(Layer(), *inputs, None)[0]
        ours.square().sum().backward()
        ours_grads = [t.grad.clone() for t in inputs]
        for t in inputs:
            t.grad = None
        theirs = sdpa_attention_forward(Layer(), *inputs, None)[0]
        theirs.square().sum().backward()
        assert torch.allclose(ours, theirs, atol=1e-5)
        assert all(torch.allclose(a, t.grad, atol=1e-4) for a, t in zip(ours_grads, inputs, strict=True))
    full = torch.zeros(1, 1, 4, 4)  # a mask that lets every token see every other: only SDPA honours it
    q, k, v = torch.randn(1, 6, 4, 16), torch.randn(1, 2, 4, 16), torch.randn(1, 2, 4, 16)
    assert torch.allclose(_attention.causal_attention(Layer(), q, k, v, full)[0],
                          sdpa_attention_forward(Layer(), q, k, v, full)[0])
    assert not torch.allclose(_attention.causal_attention(Layer(), q, k, v, None)[0],
                              sdpa_attention_forward(Layer(), q, k, v, full)[0])


def test_the_trainer_runs_short_rows_through_its_own_attention() -> None:
    from seedlab.config import TrainConfig
    from seedlab.train._attention import NAME
    from seedlab.train._model import prepare_model

    model, _ = tiny_loader("tiny")
    prepared = prepare_model(model, TrainConfig(), False, "cpu")
    assert prepared.base_model.model.config._attn_implementation == NAME


def test_a_precision_the_trainer_does_not_know_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings()
    fast_phases(settings, epochs=1)
    settings.config.train.precision = "fp16"
    data = write_samples(tmp_path / "k.jsonl")
    with pytest.raises(SeedlabError, match="train.precision='fp16': choose auto, fp32 or bf16"):
        train(settings, TrainOptions(knowledge_data=data, skills_data=data), lambda _: None, tiny_loader)
