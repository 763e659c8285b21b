"""Any multi-task problem as one model: named inputs -> ``InputEncoder`` -> an
architecture over the shared representation -> one head per task.

    source = load_source("census")
    model = MultiTaskNetwork(source.inputs, source.shapes, source.tasks,
                             architecture="mmoe", vocab=source.vocab)

``ARCHITECTURES`` names them: ``single-task`` (independent networks, the baseline),
``shared-bottom``, ``omoe`` (one gate), ``mmoe`` (one gate per task), ``cgc`` and ``ple``
(task-specific plus shared experts). The article's own network (towers, concatenation,
stacked heads) is ``MultiTaskNet``; here sequence inputs go through the same towers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .base import MultiTaskModel
from .encoders import InputEncoder
from .moe import MMoE, OMoE, SharedBottom, SingleTask
from .ple import CGC, PLE

__all__ = ["MultiTaskNetwork", "ARCHITECTURES"]

ARCHITECTURES = {"single-task": SingleTask, "shared-bottom": SharedBottom, "omoe": OMoE,
                 "mmoe": MMoE, "cgc": CGC, "ple": PLE}


class MultiTaskNetwork(MultiTaskModel):
    """Inputs encoded into one representation, then a multi-task architecture.

    Parameters
    ----------
    inputs : mapping name -> 'sequence' | 'continuous' | 'categorical'
    shapes : mapping name -> shape without N
    tasks : sequence of ``Task``
    architecture : a key of ``ARCHITECTURES``
    vocab : mapping categorical input -> vocabulary sizes
    categorical : 'onehot' | 'embedding';  embedding_dim : int
    sizes : the architecture's keyword sizes (``experts``, ``expert_units``,
            ``tower_units``, ``bottom_units``, ``levels``, ...), as its class documents
    seed, dtype, backend
    """

    def __init__(self, inputs: Mapping[str, str], shapes: Mapping[str, Sequence[int]], tasks,
                 *, architecture: str = "mmoe", vocab: Mapping | None = None,
                 categorical: str = "onehot", embedding_dim: int = 4, seed: int = 0,
                 dtype=np.float32, backend: str | None = None, **sizes: int) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"MultiTaskNetwork: architecture must be one of "
                             f"{', '.join(ARCHITECTURES)}, got {architecture!r}")
        rng = np.random.default_rng(seed)
        self.encoder = InputEncoder(inputs, shapes, vocab=vocab, categorical=categorical,
                                    embedding_dim=embedding_dim, rng=rng, dtype=dtype,
                                    backend=backend)
        self._set_tasks(tasks, tuple(inputs), self.encoder.categorical_inputs)
        self.body = ARCHITECTURES[architecture](self.encoder.out_features, self.tasks,
                                                seed=seed + 1, dtype=dtype, backend=backend,
                                                **sizes)
        self.config = dict(architecture=architecture, inputs=dict(inputs),
                           shapes={k: list(v) for k, v in shapes.items()},
                           vocab={k: list(v) for k, v in (vocab or {}).items()},
                           categorical=categorical, embedding_dim=embedding_dim,
                           tasks=[t.to_json() for t in self.tasks], sizes=dict(sizes),
                           seed=seed)

    def forward(self, inputs) -> dict:
        return self.body(self.encoder(inputs))

    def output_layers(self) -> dict:
        return {t: tower.out for t, tower in zip(self.task_names, self.body.towers)}

    def gate_weights(self) -> dict[str, dict[str, float]]:
        """Mean gate weight per gate per expert over the eval forwards since the last
        ``reset_gate_stats`` ({} for ungated architectures)."""
        return self.body.gate_weights() if self.body.gate_experts() else {}

    def reset_gate_stats(self) -> None:
        self.body.reset_gate_stats()

    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str, str]]:
        rows = self.encoder.summary_rows(batch)
        src = rows[-1][0].split(" ")[0]          # the encoding the body reads
        # the body's own "input" row is the encoding: drop it, and connect to it instead
        body = [r for r in self.body.summary_rows(batch) if r[0] != "input (Input)"]
        return rows + [(a, b, p, ", ".join(src if c == "input" else c for c in d.split(", ")),
                        o) for a, b, p, d, o in body]

    def summary_title(self) -> str:
        return (f'Model: "{self.config["architecture"]}" ({self.body.describe()}; inputs '
                f'{", ".join(f"{k}: {v}" for k, v in self.config["inputs"].items())})')
