"""What `judge train` and `tao run` share: rounds of work over models that each run opens once per reference,
writes as GGUF to compare, trains, and closes at its end. Tests pass a subclass of RoundModels with fakes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from seedlab.backends import Backend, make_backend
from seedlab.config import Settings


class RoundModels:
    """The models of one round-based run: backends opened once per reference (closed by `close`), and the
    trainer's writing and tuning, which a test replaces with fakes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: dict[str, Backend] = {}
        self._owned: list[Any] = []

    def model(self, ref: str) -> Backend:
        """The model `ref` (a registry name or .gguf) for generation, loaded once."""
        if ref not in self._open:
            self._open[ref] = make_backend(self.settings, ref)
        return self._open[ref]

    def own(self, closable: Any) -> None:
        """Close `closable` (a judge this run opened itself) with the models at the end of the run."""
        self._owned.append(closable)

    def release(self, ref: str) -> None:
        """Close the model `ref` when it is not needed again (a sampling policy the next round replaces)."""
        backend = self._open.pop(ref, None)
        if backend is not None:
            backend.close()

    def write(self, model: str, target: Path, adapter: Path | None = None) -> Path:
        """`model`, or `adapter` merged into it, as q8_0 GGUF at `target` (how every compared model is written)."""
        from seedlab.train import write_compared

        return write_compared(self.settings, model, target, adapter)

    def train(self, settings: Settings, options: Any, echo: Callable[[str], None],
              progress: Callable[[dict[str, Any]], None]) -> Any:
        """seedlab.train.train: supervised phases, as `model train` runs them."""
        from seedlab.train import train

        return train(settings, options, echo, progress=progress)

    def tune(self, model_ref: str, start_adapter: Path | None, items: list[dict[str, str]], folder: Path,
             config: Any, echo: Callable[[str], None], progress: Callable[[int, int], None]) -> Path:
        """seedlab.train.tune: preference tuning (DPO or RFT) into `folder`/adapter."""
        from seedlab.train import tune

        return tune(self.settings, model_ref, start_adapter, items, folder, config, echo, progress)

    def fit_reward(self, model_ref: str, pairs: list[tuple[str, str, str]], folder: Path, config: Any,
                   echo: Callable[[str], None], progress: Callable[[int, int], None]) -> Path:
        """seedlab.train.fit_reward: a reward model (LoRA and a scalar head) into `folder`/adapter."""
        from seedlab.train import fit_reward

        return fit_reward(self.settings, model_ref, pairs, folder, config, echo, progress)

    def open_reward(self, folder: Path) -> Any:
        """The reward judge in `folder` (judge.json and adapter/), closed by the caller."""
        from seedlab.judge._scalar import RewardJudge

        return RewardJudge(self.settings, folder)

    def written(self, model: str, target: Path, adapter: Path | None = None) -> Backend:
        """The model at `target`, written there first (as `write` does) unless an earlier run already did."""
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            self.write(model, target, adapter)
        return self.model(str(target))

    def close(self) -> None:
        for backend in [*self._open.values(), *self._owned]:
            backend.close()
        self._open.clear()
        self._owned.clear()
