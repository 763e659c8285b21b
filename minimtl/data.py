"""Data for the multi-task network: a synthetic data set, preprocessing, batching, .npz files.

Pure NumPy; imports nothing else from minimtl, so it works before the engine exists.

Every example has three behaviour sequences, each of shape (L, F) (time steps, features),
and three targets, as in the source article:

======  ==========================  ======================================================
task    input  ``inputs[task]``     target ``targets[task]``
======  ==========================  ======================================================
user    (N, L, F) float32           (N,) int64 in [0, K): the user's interest (softmax head)
goods   (N, L, F) float32           (N, G) float32 in {0, 1}: "will buy" per good (sigmoid)
ads     (N, L, F) float32           (N,) int64 in [0, K): the ad clicked (softmax head)
======  ==========================  ======================================================

The synthetic generative process (``make_synthetic``)
-----------------------------------------------------
Symbols: N samples, L = ``seq_len``, F = ``features``, K = ``classes``, G = K goods,
σ = ``noise``, r = ``relatedness``, ε = ``label_noise``, M = 5 (motif length).
One ``np.random.default_rng(seed)`` draws everything, in this order:

1. The world (fixed for a seed, shared by all samples):

   - interest motifs ``P[k]``, goods motifs ``R[g]`` and ad motifs ``Q[a]``, each an (M, F)
     array of standard normals rescaled to root-mean-square exactly 1 (drawn as P, R, Q);
   - affinity ``A`` (K, G) boolean: for each class k in turn, ``round(0.3·G)`` (at least 1)
     goods drawn without replacement are "liked" by users of interest k.

2. Latent variables per sample n (each drawn for all samples at once, in this order):

   - interest ``z[n] ~ Uniform{0..K-1}``;
   - ad latent ``w[n] ~ Uniform{0..K-1}``, independent of z (the ad's own topic);
   - viewed goods ``v[n, g] ~ Bernoulli(0.6 if A[z, g] else 0.25)``, independent over g.

3. Sequences: each starts as σ·(standard normal noise) of shape (N, L, F) (user, goods, ads
   in that order), then motifs are added (overlaps add up) at start positions drawn
   ``Uniform{0..L-M}``, independently for every occurrence:

   - user: 3 occurrences of ``P[z]``;
   - goods: one occurrence of ``R[g]`` for every good with ``v[n, g] = 1``
     (positions drawn for g = 0..G-1 in turn, for every sample, used where v = 1);
   - ads: 2 occurrences of ``Q[w]``, then 1 occurrence of ``P[z]`` (the interest echo:
     which ads a user dwelt on reflects their interest).

4. Labels, each with label noise ε. "Replaced" means: with probability ε the clean value is
   replaced by a class drawn Uniform{0..K-1} (which may equal the clean one):

   - user: the clean label is z, then replaced;
   - goods: intent ``b[n, g] = A[z, g] OR v[n, g]`` (buy what one likes or has just
     viewed), then each bit is flipped independently with probability ε;
   - ads: the clean click ``c = z`` with probability r, else ``c = w``, then replaced.

   Draw order: user (flip mask, replacement), goods flips, ads (coin for z, flip mask,
   replacement).

So the interest z drives all three sequences and all three labels; r sets how much the
ad task shares with the user task: ``P(ads label = z) = (1-ε)·(r + (1-r)/K) + ε/K``.

Best achievable accuracy (``meta["best_accuracy"]``)
----------------------------------------------------
The Bayes-optimal accuracy of a predictor that knows the planted latents (z, v, w). The
labels depend on the inputs only through these latents, so no model of the inputs can do
better in expectation; the bound is nearly tight when the latents can be read off the
sequences: one motif occurrence has a matched-filter signal-to-noise ratio of √(M·F)/σ
(about 12.6 at the defaults). Exact, from the label-noise rates:

- user:  ``1 - ε + ε/K`` (predict z);
- goods: ``max(1 - ε, ε)`` per label (predict b; binary accuracy at 0.5 over all G labels);
- ads:   if z = w (probability 1/K) predict z: ``1 - ε + ε/K``; otherwise predict z when
  r ≥ 1/2 else w: ``(1-ε)·max(r, 1-r) + ε/K``. Weighted by 1/K and (K-1)/K.

``meta["chance_accuracy"]`` is the best accuracy without looking at the inputs: 1/K for the
softmax tasks; for goods the mean over g of ``max(p_g, 1-p_g)``, where
``p_g = (1-ε)·q_g + ε·(1-q_g)`` is the probability that label g is 1 and
``q_g = mean over k of (1 if A[k, g] else 0.25)`` that of intent.

Defaults (N=2400, σ=1, r=0.8, ε=0.1, K=10) give best accuracies 0.91 (user), 0.90
(goods) and 0.748 (ads), against chance 0.1, about 0.6 and 0.1. 80% of 2400 is 1920
training samples, 60 batches of 32, as in the article's training log. At σ=1 the article's
conv net (Adam 1e-3, batch 32, no preprocessing) reaches about 0.88 / 0.73 / 0.76 on
held-out data within 10 epochs while fitting the noisy training labels to ~100%; at σ=2 it
overfits and stays near chance on goods.
"""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "TASKS",
    "Dataset",
    "make_synthetic",
    "train_val_test_split",
    "iterate_batches",
    "NotFittedError",
    "Standardizer",
    "MinMaxScaler",
    "MovingAverage",
    "Preprocessor",
    "load_npz",
    "save_npz",
]

TASKS: tuple[str, str, str] = ("user", "goods", "ads")

MOTIF_LEN = 5  # M: time steps of one motif
USER_REPEATS = 3  # occurrences of the interest motif in the user sequence
AD_REPEATS = 2  # occurrences of the ad motif in the ads sequence
INTEREST_ECHO = 1  # occurrences of the interest motif in the ads sequence
LIKED_FRACTION = 0.3  # share of goods each interest class likes
P_VIEW_LIKED = 0.6  # P(viewed | liked)
P_VIEW_OTHER = 0.25  # P(viewed | not liked)


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    """Three behaviour sequences and three targets per example.

    Attributes
    ----------
    inputs : dict[str, ndarray]
        Keys ``TASKS``; each (N, L, F) float32.
    targets : dict[str, ndarray]
        ``'user'`` (N,) int64, ``'goods'`` (N, G) float32 in {0, 1}, ``'ads'`` (N,) int64.
    meta : dict
        Generator parameters, ``best_accuracy`` (synthetic data), ``description``; JSON-able.
    latents : dict[str, ndarray]
        Optional per-sample latent variables of synthetic data, each with first axis N
        (``interest`` (N,), ``ad`` (N,), ``viewed`` (N, G)); empty for user data.
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    latents: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, d in (("inputs", self.inputs), ("targets", self.targets)):
            if set(d) != set(TASKS):
                raise ValueError(f"Dataset {name} must have keys {TASKS}, got {tuple(d)}")
        n = len(self.inputs["user"])
        for name, d in (("inputs", self.inputs), ("targets", self.targets),
                        ("latents", self.latents)):
            for key, a in d.items():
                if len(a) != n:
                    raise ValueError(
                        f"Dataset {name}[{key!r}] has {len(a)} samples, inputs['user'] has {n}"
                    )

    def __len__(self) -> int:
        return len(self.inputs["user"])

    @property
    def seq_len(self) -> int:
        """L, the number of time steps of each sequence."""
        return int(self.inputs["user"].shape[1])

    @property
    def features(self) -> int:
        """F, the number of features per time step."""
        return int(self.inputs["user"].shape[2])

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


# --------------------------------------------------------------------------- synthetic


def _motifs(rng: np.random.Generator, count: int, length: int, features: int) -> np.ndarray:
    """(count, length, features) standard normals, each motif rescaled to RMS 1."""
    m = rng.standard_normal((count, length, features))
    rms = np.sqrt(np.mean(m**2, axis=(1, 2), keepdims=True))
    return m / rms


def _place(x: np.ndarray, motifs: np.ndarray, which: np.ndarray, mask: np.ndarray,
           rng: np.random.Generator) -> None:
    """Add ``motifs[which[n]]`` to ``x[n]`` at a random start, for every n where ``mask``.

    x (N, L, F) modified in place; motifs (C, M, F); which (N,) ints; mask (N,) bool.
    Positions are drawn for all N samples (so the draw count does not depend on ``mask``).
    """
    n_samples, length, _ = x.shape
    m = motifs.shape[1]
    start = rng.integers(0, length - m + 1, size=n_samples)  # (N,)
    rows = np.flatnonzero(mask)  # (n,)
    t = start[rows, None] + np.arange(m)  # (n, M)
    # One occurrence per row per call, so no index repeats: plain += is exact.
    x[rows[:, None], t] += motifs[which[rows]].astype(x.dtype)  # (n, M, F)


def _best_accuracy(classes: int, relatedness: float, label_noise: float) -> dict[str, float]:
    k, r, e = classes, relatedness, label_noise
    same = 1.0 - e + e / k  # P(label = clean value) under "replace with prob e"
    ads = same / k + (1.0 - 1.0 / k) * ((1.0 - e) * max(r, 1.0 - r) + e / k)
    return {"user": same, "goods": max(1.0 - e, e), "ads": ads}


def _chance_accuracy(affinity: np.ndarray, label_noise: float) -> dict[str, float]:
    k = affinity.shape[0]
    p_intent = np.mean(np.where(affinity, 1.0, P_VIEW_OTHER), axis=0)  # (G,) P(b_g = 1)
    p_one = p_intent * (1.0 - label_noise) + (1.0 - p_intent) * label_noise
    goods = float(np.mean(np.maximum(p_one, 1.0 - p_one)))
    return {"user": 1.0 / k, "goods": goods, "ads": 1.0 / k}


def make_synthetic(
    samples: int = 2400,
    seq_len: int = 64,
    features: int = 32,
    classes: int = 10,
    noise: float = 1.0,
    relatedness: float = 0.8,
    seed: int = 0,
    *,
    label_noise: float = 0.1,
) -> Dataset:
    """A synthetic data set with planted structure shared by the three tasks.

    The generative process and the best achievable accuracies are in the module docstring.

    Parameters
    ----------
    samples : int
        N, number of examples (>= 1).
    seq_len : int
        L, time steps per sequence (>= 5, the motif length).
    features : int
        F, features per time step.
    classes : int
        K, number of interest classes, ad classes and goods (>= 2).
    noise : float
        σ, standard deviation of the Gaussian background (motifs have RMS 1).
    relatedness : float
        r in [0, 1]: probability that the clicked ad follows the user's interest.
    seed : int
        Seed of ``np.random.default_rng``; the same seed gives identical arrays.
    label_noise : float
        ε in [0, 1]: probability that a label is replaced (softmax tasks) or flipped (goods).

    Returns
    -------
    Dataset
        inputs (N, L, F) float32; targets user (N,) int64, goods (N, K) float32, ads (N,)
        int64; latents ``interest`` (N,), ``ad`` (N,), ``viewed`` (N, K) bool; meta with
        the parameters, ``affinity`` (K x K lists of 0/1), ``best_accuracy``,
        ``chance_accuracy`` and ``description``.
    """
    if int(samples) < 1:
        raise ValueError(f"make_synthetic: samples must be >= 1, got {samples}")
    if int(seq_len) < MOTIF_LEN:
        raise ValueError(f"make_synthetic: seq_len must be >= {MOTIF_LEN}, got {seq_len}")
    if int(features) < 1:
        raise ValueError(f"make_synthetic: features must be >= 1, got {features}")
    if int(classes) < 2:
        raise ValueError(f"make_synthetic: classes must be >= 2, got {classes}")
    if not noise >= 0:
        raise ValueError(f"make_synthetic: noise must be >= 0, got {noise}")
    if not 0.0 <= relatedness <= 1.0:
        raise ValueError(f"make_synthetic: relatedness must be in [0, 1], got {relatedness}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"make_synthetic: label_noise must be in [0, 1], got {label_noise}")
    n, length, f, k = int(samples), int(seq_len), int(features), int(classes)
    g = k
    rng = np.random.default_rng(seed)

    # 1. the world
    interest_motifs = _motifs(rng, k, MOTIF_LEN, f)  # P (K, M, F)
    goods_motifs = _motifs(rng, g, MOTIF_LEN, f)  # R (G, M, F)
    ad_motifs = _motifs(rng, k, MOTIF_LEN, f)  # Q (K, M, F)
    liked = max(1, round(LIKED_FRACTION * g))
    affinity = np.zeros((k, g), dtype=bool)  # A (K, G)
    for c in range(k):
        affinity[c, rng.choice(g, size=liked, replace=False)] = True

    # 2. latents
    z = rng.integers(0, k, size=n)  # (N,)
    w = rng.integers(0, k, size=n)  # (N,)
    viewed = rng.random((n, g)) < np.where(affinity[z], P_VIEW_LIKED, P_VIEW_OTHER)  # (N, G)

    # 3. sequences
    x = {t: float(noise) * rng.standard_normal((n, length, f), dtype=np.float32) for t in TASKS}
    everyone = np.ones(n, dtype=bool)
    for _ in range(USER_REPEATS):
        _place(x["user"], interest_motifs, z, everyone, rng)
    for good in range(g):
        _place(x["goods"], goods_motifs, np.full(n, good), viewed[:, good], rng)
    for _ in range(AD_REPEATS):
        _place(x["ads"], ad_motifs, w, everyone, rng)
    for _ in range(INTEREST_ECHO):
        _place(x["ads"], interest_motifs, z, everyone, rng)

    # 4. labels
    def replace(clean: np.ndarray) -> np.ndarray:
        flip = rng.random(n) < label_noise
        other = rng.integers(0, k, size=n)
        return np.where(flip, other, clean).astype(np.int64)

    y_user = replace(z)
    intent = affinity[z] | viewed  # (N, G)
    y_goods = (intent ^ (rng.random((n, g)) < label_noise)).astype(np.float32)
    clicked = np.where(rng.random(n) < relatedness, z, w)
    y_ads = replace(clicked)

    meta: dict[str, Any] = {
        "generator": "make_synthetic",
        "samples": n,
        "seq_len": length,
        "features": f,
        "classes": k,
        "goods": g,
        "noise": float(noise),
        "relatedness": float(relatedness),
        "label_noise": float(label_noise),
        "seed": int(seed) if isinstance(seed, (int, np.integer)) else None,
        "motif_len": MOTIF_LEN,
        "affinity": affinity.astype(int).tolist(),
        "best_accuracy": _best_accuracy(k, float(relatedness), float(label_noise)),
        "chance_accuracy": _chance_accuracy(affinity, float(label_noise)),
        "description": (
            "Synthetic user/goods/ads behaviour sequences: a latent interest class plants "
            "motifs in the user and ads sequences and sets which goods are liked and viewed; "
            "labels: interest, buy = liked or viewed, ad click = interest (prob. relatedness) "
            "or the ad's own topic; all with label noise. See minimtl.data."
        ),
    }
    latents = {"interest": z.astype(np.int64), "ad": w.astype(np.int64), "viewed": viewed}
    targets = {"user": y_user, "goods": y_goods, "ads": y_ads}
    return Dataset(x, targets, meta, latents)


# --------------------------------------------------------------------------- split, batches


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
    inputs : dict[str, ndarray]
        Keys ``TASKS``, each (n, L, F).
    targets : dict[str, ndarray]
        ``'user'`` (n,), ``'goods'`` (n, G), ``'ads'`` (n,).
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


# --------------------------------------------------------------------------- preprocessing


class NotFittedError(RuntimeError):
    """A preprocessing step was used before ``fit``."""


def _check_sequences(x: np.ndarray, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{who}: expected (N, L, F) sequences, got shape {x.shape}")
    return x


class Standardizer:
    """Per-feature standardisation: ``(x - mean) / std`` over samples and time.

    Statistics are per feature (last axis), over all other axes of the fitted array; a
    feature with std 0 is divided by 1. State: ``mean`` (F,), ``std`` (F,) float64.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        """Compute mean and std per feature of x (N, L, F)."""
        x = _check_sequences(x, "Standardizer.fit").astype(np.float64)
        axes = tuple(range(x.ndim - 1))
        self.mean = x.mean(axis=axes)
        std = x.std(axis=axes)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, L, F) -> (N, L, F) standardised, same float dtype (float32 for ints)."""
        if self.mean is None or self.std is None:
            raise NotFittedError("Standardizer.transform called before fit()")
        x = _check_sequences(x, "Standardizer.transform")
        _check_features(x, self.mean, "Standardizer")
        return ((x - self.mean) / self.std).astype(_float_dtype(x))

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def state(self) -> dict[str, np.ndarray]:
        """``{'mean': (F,), 'std': (F,)}``, copies, for an .npz checkpoint."""
        if self.mean is None or self.std is None:
            raise NotFittedError("Standardizer.state called before fit()")
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    @classmethod
    def from_state(cls, d: dict[str, np.ndarray]) -> Standardizer:
        """Rebuild from ``state()``."""
        out = cls()
        out.mean = np.array(d["mean"], dtype=np.float64)
        out.std = np.array(d["std"], dtype=np.float64)
        return out


class MinMaxScaler:
    """Per-feature min-max normalisation: ``(x - min) / (max - min)``, to [0, 1] on the fit data.

    A constant feature (max = min) is divided by 1, so it maps to 0 on the fit data.
    State: ``min`` (F,), ``max`` (F,) float64.
    """

    def __init__(self) -> None:
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> MinMaxScaler:
        """Compute min and max per feature of x (N, L, F)."""
        x = _check_sequences(x, "MinMaxScaler.fit").astype(np.float64)
        if x.size == 0:
            raise ValueError("MinMaxScaler.fit: empty input")
        axes = tuple(range(x.ndim - 1))
        self.min = x.min(axis=axes)
        self.max = x.max(axis=axes)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, L, F) -> (N, L, F) scaled, same float dtype (float32 for ints)."""
        if self.min is None or self.max is None:
            raise NotFittedError("MinMaxScaler.transform called before fit()")
        x = _check_sequences(x, "MinMaxScaler.transform")
        _check_features(x, self.min, "MinMaxScaler")
        span = self.max - self.min
        span = np.where(span > 0, span, 1.0)
        return ((x - self.min) / span).astype(_float_dtype(x))

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def state(self) -> dict[str, np.ndarray]:
        """``{'min': (F,), 'max': (F,)}``, copies, for an .npz checkpoint."""
        if self.min is None or self.max is None:
            raise NotFittedError("MinMaxScaler.state called before fit()")
        return {"min": self.min.copy(), "max": self.max.copy()}

    @classmethod
    def from_state(cls, d: dict[str, np.ndarray]) -> MinMaxScaler:
        """Rebuild from ``state()``."""
        out = cls()
        out.min = np.array(d["min"], dtype=np.float64)
        out.max = np.array(d["max"], dtype=np.float64)
        return out


class MovingAverage:
    """Denoising by a centred moving average along time (axis 1 of (N, L, F)).

    ``y[n, t, f] = mean(x[n, s, f] for s in [t - a, t + b] ∩ [0, L))`` with
    ``a = (window - 1) // 2`` and ``b = window - 1 - a``: the output has length L ('same'),
    and near the edges it averages only the samples that exist. Nothing is fitted; ``fit``
    only checks and returns self. State: ``window`` (0-d int64).
    """

    def __init__(self, window: int = 3) -> None:
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ValueError(f"MovingAverage: window must be an integer >= 1, got {window}")
        self.window = int(window)

    def fit(self, x: np.ndarray) -> MovingAverage:
        """Stateless: checks x (N, L, F) and returns self."""
        _check_sequences(x, "MovingAverage.fit")
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, L, F) -> (N, L, F) smoothed along L, same float dtype (float32 for ints)."""
        x = _check_sequences(x, "MovingAverage.transform")
        length = x.shape[1]
        a = (self.window - 1) // 2
        b = self.window - 1 - a
        # Prefix sums along time: sum of x[s] for s in [lo, hi) = c[hi] - c[lo].
        c = np.cumsum(x.astype(np.float64), axis=1)
        c = np.concatenate([np.zeros_like(c[:, :1]), c], axis=1)  # (N, L + 1, ...)
        t = np.arange(length)
        lo = np.clip(t - a, 0, length)
        hi = np.clip(t + b + 1, 0, length)
        count = (hi - lo).reshape((1, length) + (1,) * (x.ndim - 2))
        y = (c[:, hi] - c[:, lo]) / count
        return y.astype(_float_dtype(x))

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def state(self) -> dict[str, np.ndarray]:
        """``{'window': 0-d int64}``."""
        return {"window": np.array(self.window, dtype=np.int64)}

    @classmethod
    def from_state(cls, d: dict[str, np.ndarray]) -> MovingAverage:
        """Rebuild from ``state()``."""
        return cls(int(np.asarray(d["window"])))


def _float_dtype(x: np.ndarray) -> np.dtype:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)


def _check_features(x: np.ndarray, stat: np.ndarray, who: str) -> None:
    if x.shape[-1] != stat.shape[-1]:
        raise ValueError(
            f"{who}: fitted on {stat.shape[-1]} features, got input of shape {x.shape}"
        )


_STEPS = {"denoise": MovingAverage, "standardize": Standardizer, "minmax": MinMaxScaler}


class Preprocessor:
    """The article's preprocessing (section 3.2) for the three input sequences.

    Each step in ``steps`` (applied in order) is one of ``"denoise"`` (``MovingAverage``),
    ``"standardize"`` (``Standardizer``) and ``"minmax"`` (``MinMaxScaler``). Each sequence
    (user, goods, ads) gets its own statistics, fitted on the training split only, each step
    on the output of the steps before it.

    Parameters
    ----------
    steps : sequence of str
        Step names, in order; may be empty (identity).
    window : int
        Window of the ``"denoise"`` step.
    """

    def __init__(self, steps: Sequence[str] = ("denoise", "standardize"), window: int = 3
                 ) -> None:
        if isinstance(steps, str):
            steps = (steps,)
        for s in steps:
            if s not in _STEPS:
                raise ValueError(f"Preprocessor: unknown step {s!r}; choose from {tuple(_STEPS)}")
        self.steps: tuple[str, ...] = tuple(steps)
        self.window = int(window)
        MovingAverage(self.window)  # validates the window now
        self.fitted: dict[str, list[Any]] | None = None

    def _new_step(self, name: str) -> Any:
        return MovingAverage(self.window) if name == "denoise" else _STEPS[name]()

    def fit(self, train: Dataset) -> Preprocessor:
        """Fit every step on each sequence of the TRAINING split ``train``."""
        fitted: dict[str, list[Any]] = {}
        for task in TASKS:
            x = train.inputs[task]
            fitted[task] = []
            for name in self.steps:
                step = self._new_step(name)
                x = step.fit_transform(x)
                fitted[task].append(step)
        self.fitted = fitted
        return self

    def transform(self, ds: Dataset) -> Dataset:
        """A new Dataset with transformed inputs; ``ds`` is not modified.

        Targets and latents are shared with ``ds`` (not copied); meta is a shallow copy with
        ``preprocessing = list(steps)``.
        """
        if self.fitted is None:
            raise NotFittedError("Preprocessor.transform called before fit(train)")
        inputs = {}
        for task in TASKS:
            x = ds.inputs[task]
            for step in self.fitted[task]:
                x = step.transform(x)
            inputs[task] = np.array(x, dtype=np.float32)
        meta = dict(ds.meta)
        meta["preprocessing"] = list(self.steps)
        return Dataset(inputs, dict(ds.targets), meta, dict(ds.latents))

    def fit_transform(self, train: Dataset) -> Dataset:
        """``fit(train)`` then ``transform(train)``."""
        return self.fit(train).transform(train)

    def state(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays: ``steps`` (str array), ``window``, ``'{task}/{i}/{key}'``."""
        if self.fitted is None:
            raise NotFittedError("Preprocessor.state called before fit(train)")
        out: dict[str, np.ndarray] = {
            "steps": np.array(self.steps, dtype=np.str_),
            "window": np.array(self.window, dtype=np.int64),
        }
        for task in TASKS:
            for i, step in enumerate(self.fitted[task]):
                for key, value in step.state().items():
                    out[f"{task}/{i}/{key}"] = value
        return out

    @classmethod
    def from_state(cls, d: dict[str, np.ndarray]) -> Preprocessor:
        """Rebuild a fitted Preprocessor from ``state()``."""
        steps = tuple(str(s) for s in np.asarray(d["steps"]).reshape(-1))
        out = cls(steps, int(np.asarray(d["window"])))
        fitted: dict[str, list[Any]] = {}
        for task in TASKS:
            fitted[task] = []
            for i, name in enumerate(steps):
                prefix = f"{task}/{i}/"
                sub = {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}
                fitted[task].append(_STEPS[name].from_state(sub))
        out.fitted = fitted
        return out


# --------------------------------------------------------------------------- .npz files

_LABEL_KEYS = {"user": "user_labels", "goods": "goods_labels", "ads": "ads_labels"}


def save_npz(ds: Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` in the schema of ``load_npz`` (uncompressed ``np.savez``).

    Also writes ``meta`` (JSON string) and the latents as ``latent_<name>``.
    """
    arrays: dict[str, np.ndarray] = {}
    for task in TASKS:
        arrays[task] = ds.inputs[task]
        arrays[_LABEL_KEYS[task]] = ds.targets[task]
    for name, value in ds.latents.items():
        arrays[f"latent_{name}"] = value
    arrays["meta"] = np.array(json.dumps(ds.meta, default=_json_default))
    np.savez(path, **arrays)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.ndarray, np.generic)):
        return o.tolist()
    raise TypeError(f"save_npz: meta value of type {type(o).__name__} is not JSON-serialisable")


#: what np.load and reading a member raise on a file that is not a well-formed .npz
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
               SyntaxError, tokenize.TokenError, MemoryError)


def _read_npz(path: str | os.PathLike, where: str, required: list[str]) -> dict[str, np.ndarray]:
    """The members of an .npz that ``load_npz`` uses (the required ones, ``meta`` and the
    ``latent_*``), read one by one (an unused member is never decompressed); one
    ``ValueError`` naming the file, and the member where there is one, for anything
    unreadable: not a zip, truncated, a bad CRC, a corrupt .npy header, pickled objects."""
    if not os.path.exists(path):
        raise ValueError(f"{where}: no such file")
    try:
        f = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as e:
        raise ValueError(f"{where}: not a readable .npz archive (a zip of .npy arrays, as "
                         f"np.savez writes): {type(e).__name__}") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: holds a single .npy array, not an .npz archive of named "
                         f"arrays (save with np.savez(path, user=..., ...))")
    with f:
        names = set(f.files)
        missing = [k for k in required if k not in names]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; keys found: "
                             f"{sorted(names)}; required: {required}")
        data = {}
        for k in sorted(names):
            if k in required or k == "meta" or k.startswith("latent_"):
                try:
                    data[k] = f[k]
                except ValueError as e:
                    if "pickle" not in str(e):
                        raise ValueError(f"{where}: member {k!r} is truncated or corrupted "
                                         f"(ValueError)") from None
                    raise ValueError(f"{where}: member {k!r} holds Python objects "
                                     f"(pickled), which are never loaded: store numeric "
                                     f"arrays") from None
                except _NPZ_ERRORS as e:
                    raise ValueError(f"{where}: member {k!r} is truncated or corrupted "
                                     f"({type(e).__name__})") from None
    return data


def load_npz(path: str | os.PathLike, classes: int | None = None) -> Dataset:
    """Load user data from an .npz file (``allow_pickle=False``) and check it.

    Schema
    ------
    Required keys:

    - ``user``, ``goods``, ``ads``: (N, L, F) real arrays, all three of identical shape,
      finite (no NaN/inf); loaded as float32.
    - ``user_labels``: (N,) integers in [0, classes); loaded as int64.
    - ``goods_labels``: (N, G) values in {0, 1} (bool, int or float); loaded as float32.
    - ``ads_labels``: (N,) integers in [0, classes); loaded as int64.

    Optional keys: ``meta`` (0-d string holding a JSON object, merged into ``Dataset.meta``)
    and ``latent_<name>`` arrays with first axis N (into ``Dataset.latents``). Other keys
    are ignored. Integer-valued float labels are accepted.

    Parameters
    ----------
    path : str or PathLike
    classes : int, optional
        K, the number of classes of the two softmax tasks. Default: ``meta["classes"]``
        when the file has it, else ``1 + max`` of user and ads labels.

    Returns
    -------
    Dataset
        With ``meta["source"] = str(path)`` and ``meta["classes"]``.

    Raises
    ------
    ValueError
        Naming the key and the problem: missing keys (with the keys found), wrong shape
        (expected and actual), mismatched N, non-numeric or non-finite values (with the
        count), labels that are not integers / not 0 or 1, labels out of range.
    """
    where = f"load_npz({os.fspath(path)!r})"
    required = list(TASKS) + [_LABEL_KEYS[t] for t in TASKS]
    data = _read_npz(path, where, required)

    meta: dict[str, Any] = {}
    if "meta" in data:
        try:
            meta = json.loads(str(data["meta"]))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{where}: key 'meta' is not a JSON string: {err}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{where}: key 'meta' must hold a JSON object")

    # Inputs: 'user' fixes (N, L, F); the other two must match it.
    inputs: dict[str, np.ndarray] = {}
    for task in TASKS:
        a = data[task]
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise ValueError(f"{where}: key {task!r} must be a real numeric array, "
                             f"got dtype {a.dtype}")
        if a.ndim != 3:
            raise ValueError(f"{where}: key {task!r} must have shape (N, L, F), "
                             f"got shape {a.shape}")
        inputs[task] = a
    n, length, f = inputs["user"].shape
    for task in ("goods", "ads"):
        shape = inputs[task].shape
        if shape[0] != n:
            raise ValueError(f"{where}: mismatched N: key {task!r} has N={shape[0]}, "
                             f"key 'user' has N={n}")
        if shape != (n, length, f):
            raise ValueError(f"{where}: key {task!r} has shape {shape}, expected "
                             f"{(n, length, f)} (identical to 'user')")
    for task in TASKS:
        bad = int(np.count_nonzero(~np.isfinite(inputs[task])))
        if bad:
            raise ValueError(f"{where}: key {task!r} contains {bad} NaN/inf value(s)")
        with np.errstate(over="ignore"):
            inputs[task] = inputs[task].astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(inputs[task])))   # beyond float32's range
        if bad:
            raise ValueError(f"{where}: key {task!r} has {bad} value(s) beyond float32's "
                             f"range (|x| > 3.4e38): they would train as inf")

    # Labels.
    labels = {t: data[_LABEL_KEYS[t]] for t in TASKS}
    for task, ndim, expected in (("user", 1, "(N,)"), ("goods", 2, "(N, G)"),
                                 ("ads", 1, "(N,)")):
        key, a = _LABEL_KEYS[task], labels[task]
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise ValueError(f"{where}: key {key!r} must be a real numeric array, "
                             f"got dtype {a.dtype}")
        if a.ndim != ndim:
            raise ValueError(f"{where}: key {key!r} must have shape {expected} with N={n}, "
                             f"got shape {a.shape}")
        if a.shape[0] != n:
            raise ValueError(f"{where}: mismatched N: key {key!r} has N={a.shape[0]}, "
                             f"key 'user' has N={n}")
        bad = int(np.count_nonzero(~np.isfinite(a))) if a.dtype.kind == "f" else 0
        if bad:
            raise ValueError(f"{where}: key {key!r} contains {bad} NaN/inf value(s)")
    for task in ("user", "ads"):
        key, a = _LABEL_KEYS[task], labels[task]
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            bad = int(np.count_nonzero(a != np.round(a)))
            raise ValueError(f"{where}: key {key!r} must hold integer class labels, "
                             f"{bad} value(s) are not integers")
    g_bad = int(np.count_nonzero((labels["goods"] != 0) & (labels["goods"] != 1)))
    if g_bad:
        raise ValueError(f"{where}: key 'goods_labels' must hold 0 or 1, "
                         f"{g_bad} value(s) are neither")

    if classes is None:
        classes = meta.get("classes")
    if classes is None:
        classes = 1 + int(max(labels["user"].max(initial=0), labels["ads"].max(initial=0)))
    classes = int(classes)
    for task in ("user", "ads"):
        key, a = _LABEL_KEYS[task], labels[task]
        out = (a < 0) | (a >= classes)
        if np.any(out):
            first = a[out][0]
            raise ValueError(
                f"{where}: key {key!r} has {int(np.count_nonzero(out))} label(s) out of range "
                f"[0, {classes}) (e.g. {first.item()})"
            )

    latents: dict[str, np.ndarray] = {}
    for key, a in data.items():
        if key.startswith("latent_"):
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(f"{where}: mismatched N: key {key!r} has shape {a.shape}, "
                                 f"expected first axis N={n}")
            latents[key[len("latent_"):]] = a

    meta = dict(meta)
    meta["source"] = os.fspath(path)
    meta["classes"] = classes
    meta["samples"] = int(n)
    meta.setdefault("description", f"user data loaded from {os.path.basename(path)}")
    targets = {
        "user": labels["user"].astype(np.int64),
        "goods": labels["goods"].astype(np.float32),
        "ads": labels["ads"].astype(np.int64),
    }
    return Dataset(inputs, targets, meta, latents)
