"""The data set container, the train/validation/test split and batching."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TASKS", "Dataset", "train_val_test_split", "iterate_batches"]

TASKS: tuple[str, str, str] = ("user", "goods", "ads")


@dataclass
class Dataset:
    """Named inputs and named targets, N examples each.

    The article's data (``make_synthetic``, the ``.npz`` schema of the README) has three
    behaviour sequences and three targets keyed by ``TASKS``; any other multi-task data
    set has its own names: sequences (N, L, F), continuous columns (N, D) float, categorical
    columns (N, D) int codes, and one target array per task.

    Attributes
    ----------
    inputs : dict[str, ndarray]
        Each with first axis N; for the article ``TASKS`` -> (N, L, F) float32.
    targets : dict[str, ndarray]
        One per task, first axis N; for the article ``'user'`` (N,) int64, ``'goods'``
        (N, G) float32 in {0, 1}, ``'ads'`` (N,) int64.
    meta : dict
        Generator parameters, ``best_accuracy`` (synthetic data), ``description``, the
        declared ``tasks`` (a list of ``{name, kind, outputs, weight}``) when the data
        declares them; JSON-able.
    latents : dict[str, ndarray]
        Optional per-sample latent variables of synthetic data, each with first axis N
        (``interest`` (N,), ``ad`` (N,), ``viewed`` (N, G)); empty for user data.
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    latents: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("Dataset: inputs is empty (at least one named input array)")
        first = next(iter(self.inputs))
        n = len(self.inputs[first])
        for name, d in (("inputs", self.inputs), ("targets", self.targets),
                        ("latents", self.latents)):
            for key, a in d.items():
                if len(a) != n:
                    raise ValueError(
                        f"Dataset {name}[{key!r}] has {len(a)} samples, inputs[{first!r}] "
                        f"has {n}"
                    )

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def _sequence(self) -> np.ndarray:
        for a in self.inputs.values():
            if a.ndim == 3:
                return a
        raise ValueError(f"Dataset: no sequence input (N, L, F) among "
                         f"{', '.join(self.inputs)}")

    @property
    def seq_len(self) -> int:
        """L, the number of time steps of the (first) sequence input."""
        return int(self._sequence().shape[1])

    @property
    def features(self) -> int:
        """F, the number of features per time step of the (first) sequence input."""
        return int(self._sequence().shape[2])

    def subset(self, indices: np.ndarray | Sequence[int] | slice) -> Dataset:
        """The examples at ``indices`` (integer array, boolean mask or slice), as copies.

        Parameters
        ----------
        indices : (n,) int array, (N,) bool array or slice

        Returns
        -------
        Dataset
            n examples; ``meta`` is copied (shallow) and gets ``samples = n``.
        """
        if not isinstance(indices, slice):
            indices = np.asarray(indices)
            if indices.dtype != bool:
                indices = indices.astype(np.intp, copy=False)

        def take(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: np.array(v[indices]) for k, v in d.items()}

        meta = dict(self.meta)
        out = Dataset(take(self.inputs), take(self.targets), meta, take(self.latents))
        meta["samples"] = len(out)
        return out


def train_val_test_split(
    ds: Dataset, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[Dataset, Dataset, Dataset]:
    """Shuffle and split into disjoint train, validation and test sets.

    Sizes: ``n_val = round(N·val_fraction)``, ``n_test = round(N·test_fraction)``, the rest
    is training. A permutation from ``np.random.default_rng(seed)`` is cut in that order.

    Parameters
    ----------
    ds : Dataset
        N examples.
    val_fraction, test_fraction : float
        Each in [0, 1), with a sum below 1, leaving at least one training example.
    seed : int

    Returns
    -------
    (train, val, test) : tuple of Dataset
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"train_val_test_split: {name} must be in [0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "train_val_test_split: val_fraction + test_fraction must be < 1, got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )
    n = len(ds)
    n_val = int(round(n * val_fraction))
    n_test = int(round(n * test_fraction))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(
            f"train_val_test_split: no training examples left from N={n} "
            f"(val {n_val}, test {n_test})"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return (
        ds.subset(perm[:n_train]),
        ds.subset(perm[n_train:n_train + n_val]),
        ds.subset(perm[n_train + n_val:]),
    )


def iterate_batches(
    ds: Dataset,
    batch_size: int,
    shuffle: bool = True,
    rng: np.random.Generator | int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Yield ``(inputs, targets)`` mini-batches covering the data set once.

    Parameters
    ----------
    ds : Dataset
        N examples.
    batch_size : int
        Examples per batch (>= 1); the last batch is smaller unless ``drop_last``.
    shuffle : bool
        Visit the examples in a random order drawn from ``rng`` (else in index order).
    rng : numpy Generator, int or None
        Source of the order; an int seeds a new generator; None draws fresh OS entropy.
        The same generator state gives the same batches.
    drop_last : bool
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    inputs, targets : dict[str, ndarray]
        The data set's, each with first axis n.
    """
    if int(batch_size) < 1:
        raise ValueError(f"iterate_batches: batch_size must be >= 1, got {batch_size}")
    n = len(ds)
    if shuffle:
        order = np.random.default_rng(rng).permutation(n)
    else:
        order = np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if drop_last and len(idx) < batch_size:
            break
        yield ({k: v[idx] for k, v in ds.inputs.items()},
               {k: v[idx] for k, v in ds.targets.items()})
