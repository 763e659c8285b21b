"""What training shows and keeps: Keras-style progress lines and the per-epoch History."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import TextIO

from ..checkpoint import atomic_write

__all__ = ["History", "Progress", "format_logs"]


def format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class Progress:
    """Keras-style progress: a live bar on a terminal, plain epoch lines otherwise."""

    def __init__(self, stream: TextIO | None, steps: int, epochs: int):
        self.stream = stream
        self.steps = steps
        self.epochs = epochs
        self.live = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0

    def _bar(self, step: int) -> str:
        width = 30
        done = int(width * step / max(self.steps, 1))
        arrow = ">" if step < self.steps else "="
        body = "=" * max(done - 1, 0) + (arrow if done else "") + "." * (width - done)
        return f"{step}/{self.steps} [{body}]"

    def epoch_start(self, epoch: int) -> None:
        if self.stream is not None:
            print(f"Epoch {epoch}/{self.epochs}", file=self.stream, flush=True)

    def due(self, step: int) -> bool:
        """Whether ``step`` would draw the live bar (at most every 0.1 s, and the last step):
        the loop reads the running losses off the device only then."""
        return self.live and (step >= self.steps or time.perf_counter() - self._last >= 0.1)

    def step(self, step: int, elapsed: float, logs: dict[str, float]) -> None:
        if not self.due(step):
            return
        self._last = time.perf_counter()
        eta = elapsed / step * (self.steps - step)
        print(f"\r{self._bar(step)} - ETA: {eta:.0f}s - {format_logs(logs)}", end="",
              file=self.stream, flush=True)

    def epoch_end(self, elapsed: float, logs: dict[str, float]) -> None:
        if self.stream is None:
            return
        per_step = elapsed / max(self.steps, 1) * 1e3
        line = f"{self._bar(self.steps)} - {elapsed:.0f}s {per_step:.0f}ms/step - "
        print(("\r" if self.live else "") + line + format_logs(logs), file=self.stream,
              flush=True)


@dataclass
class History:
    """Per-epoch logs (train means, and val_* when validating), as Keras's History."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def to_json(self) -> str:
        return json.dumps({"epochs": self.epochs}, indent=1)

    def save(self, path: str | os.PathLike) -> None:
        text = self.to_json()
        atomic_write(path, lambda f: f.write(text), binary=False)
