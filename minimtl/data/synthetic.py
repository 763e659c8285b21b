"""The synthetic data set (``make_synthetic``).

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

from typing import Any

import numpy as np

from .dataset import TASKS, Dataset

__all__ = ["make_synthetic"]

MOTIF_LEN = 5  # M: time steps of one motif
USER_REPEATS = 3  # occurrences of the interest motif in the user sequence
AD_REPEATS = 2  # occurrences of the ad motif in the ads sequence
INTEREST_ECHO = 1  # occurrences of the interest motif in the ads sequence
LIKED_FRACTION = 0.3  # share of goods each interest class likes
P_VIEW_LIKED = 0.6  # P(viewed | liked)
P_VIEW_OTHER = 0.25  # P(viewed | not liked)


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
