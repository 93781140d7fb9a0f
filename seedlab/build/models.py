"""The models a build uses, behind one object: the teacher (None: SDG opens the configured one), the trainer's
model loader, the judge, a backend per model that answers questions, the likelihood of answers under the base
and the built model, and the GGUF export. Tests pass a subclass built from fakes and tiny models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seedlab.config import Settings


class BuildModels:
    """The real models of a build; the judge is opened once, when first needed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._judge: Any = None

    def teacher(self) -> Any:
        """The SDG teacher backend, or None for the one config and options name."""
        return None

    def loader(self) -> Any:
        """The trainer's ModelLoader, or None for seedlab.train.load_model."""
        return None

    def judge(self) -> Any:
        from seedlab.judge.judging import open_judge

        if self._judge is None:  # eval.judge, else the SDG teacher as a generative judge
            self._judge = open_judge(self.settings)
        return self._judge

    @contextlib.contextmanager
    def answering(self, base: str, adapter: Path | None) -> Iterator[Any]:
        """A backend of `base` (with `adapter`) that answers greedily; candidates run on transformers."""
        from seedlab.backends import make_backend

        backend = make_backend(self.settings, base, adapter=adapter, hf=True)
        try:
            yield backend
        finally:
            backend.close()

    def answer_logps(self, base: str, adapter: Path, items: Sequence[tuple[str, str]]) -> tuple[list[float],
                                                                                           list[float]]:
        """Mean log-probability per token of each (question, answer)'s answer under `base` and base + adapter."""
        from peft import PeftModel

        from seedlab.train import answer_logprobs, load_model

        model, tokenizer = load_model(self.settings, base)
        before = answer_logprobs(model, tokenizer, items)
        return before, answer_logprobs(PeftModel.from_pretrained(model, str(adapter)), tokenizer, items)

    def export(self, base: str, adapter: Path, target: Path) -> None:
        """The adapter merged into the base as one GGUF file."""
        from seedlab.train import convert

        convert(self.settings, adapter, "gguf", self.settings.config.build.quantize, model=base, output=target)

    def close(self) -> None:
        if self._judge is not None:
            self._judge.close()
