"""The real default model through `model train`, `model chat --adapter` and `model convert` to GGUF in llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from seedlab.cli import cli

pytestmark = pytest.mark.integration

FACTS = [("Where is the Halvane Seed Library?", "The Halvane Seed Library is in Ostrel Vey."),
         ("Who founded the Halvane Seed Library?", "Mirela Kostandin founded it in 2009."),
         ("What powers the library's machines?", "A waterwheel on the Sendra river powers them.")]


def test_train_chat_convert_and_generate_in_llama_cpp(tmp_path: Path, seedlab_home: Path) -> None:
    import numpy as np
    import torch
    import transformers
    from llama_cpp import Llama
    from peft import PeftModel

    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant",
                                                                                      "content": a}]}) + "\n"
                            for q, a in FACTS * 4))
    seedlab_home.mkdir(parents=True, exist_ok=True)
    (seedlab_home / "config.yaml").write_text(yaml.safe_dump({"train": {"phases": [
        {"name": "skills", "data": "skills", "epochs": 1, "lr": 5e-3, "warmup": 0.0}], "tokens_per_batch": 256}}))
    runner = CliRunner()
    trained = runner.invoke(cli, ["model", "train", "--skills-data", str(data), "--max-steps", "3"])
    assert trained.exit_code == 0, trained.output
    adapter = next((seedlab_home).rglob("adapter/adapter_config.json")).parent
    assert "next: seedlab model chat --adapter" in trained.output

    answer = runner.invoke(cli, ["model", "chat", "--adapter", str(adapter), "-q", FACTS[0][0]])
    assert answer.exit_code == 0 and answer.output.strip(), answer.output

    converted = runner.invoke(cli, ["model", "convert", str(adapter), "--quantize", "f16"])
    assert converted.exit_code == 0, converted.output
    gguf_file = adapter.parent / "adapter-merged-f16.gguf"
    assert gguf_file.is_file() and not list(adapter.parent.glob("*.partial"))

    # The merged GGUF in llama.cpp gives the logits of base + adapter in transformers, not those of the base.
    hf_folder = next((seedlab_home / "cache" / "models" / "hf").iterdir())
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": FACTS[1][0]}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    tuned = PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(hf_folder), str(adapter))
    with torch.no_grad():
        expected = tuned(ids).logits[0, -1].numpy()
        with tuned.disable_adapter():
            base = tuned(ids).logits[0, -1].numpy()
    llm = Llama(str(gguf_file), n_ctx=512, logits_all=True, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    assert tokens == ids[0].tolist()
    llm.eval(tokens)
    merged = np.array(llm.scores[len(tokens) - 1])
    assert np.abs(merged - expected).max() < 0.2 * np.abs(base - expected).max()

    as_hf = runner.invoke(cli, ["model", "convert", str(adapter), "--to", "hf"])
    assert as_hf.exit_code == 0, as_hf.output
    with torch.no_grad():
        hf_merged = transformers.AutoModelForCausalLM.from_pretrained(adapter.parent / "adapter-merged-hf")
        assert np.abs(hf_merged(ids).logits[0, -1].numpy() - expected).max() < 1e-3

    reply = runner.invoke(cli, ["model", "chat", "--model", str(gguf_file), "-q", FACTS[0][0]])
    assert reply.exit_code == 0 and reply.output.strip(), reply.output
    bad = runner.invoke(cli, ["model", "convert", str(tmp_path)])
    assert bad.exit_code == 1 and "not a PEFT adapter folder" in bad.output


def test_full_fine_tuning_converts_to_gguf_with_its_own_weights(tmp_path: Path, seedlab_home: Path) -> None:
    import numpy as np
    import torch
    import transformers
    from llama_cpp import Llama

    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                     {"role": "assistant", "content": a}]}) + "\n" for q, a in FACTS))
    seedlab_home.mkdir(parents=True, exist_ok=True)
    (seedlab_home / "config.yaml").write_text(yaml.safe_dump({"train": {"phases": [
        {"name": "skills", "data": "skills", "epochs": 1, "lr": 1e-4, "warmup": 0.0}], "tokens_per_batch": 256}}))
    runner = CliRunner()
    trained = runner.invoke(cli, ["model", "train", "--full", "--skills-data", str(data), "--max-steps", "2"])
    assert trained.exit_code == 0, trained.output
    folder = next(seedlab_home.rglob("model/model.safetensors")).parent
    assert f"next: seedlab model chat --model {folder}" in trained.output
    converted = runner.invoke(cli, ["model", "convert", str(folder), "--quantize", "f16"])
    assert converted.exit_code == 0, converted.output

    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": FACTS[2][0]}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    base_folder = next((seedlab_home / "cache" / "models" / "hf").iterdir())
    with torch.no_grad():
        expected = transformers.AutoModelForCausalLM.from_pretrained(folder)(ids).logits[0, -1].numpy()
        base = transformers.AutoModelForCausalLM.from_pretrained(base_folder)(ids).logits[0, -1].numpy()
    llm = Llama(str(folder.parent / "model-merged-f16.gguf"), n_ctx=512, logits_all=True, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.eval(tokens)
    merged = np.array(llm.scores[len(tokens) - 1])
    assert np.abs(merged - expected).max() < 0.2 * np.abs(base - expected).max()
