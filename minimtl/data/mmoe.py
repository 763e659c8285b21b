"""The MMoE paper's synthetic two-task regression data (``make_mmoe_synthetic``).

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 3.2, builds two regression tasks whose relatedness is
one number, the cosine p of their weight vectors:

1. two orthogonal unit vectors u1, u2 in R^d;
2. w1 = c·u1, w2 = c·(p·u1 + sqrt(1 − p²)·u2), so ‖w1‖ = ‖w2‖ = c and cos(w1, w2) = p;
3. x ~ N(0, I_d);
4. y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k, k = 1, 2, ε_k ~ N(0, σ²) i.i.d.;
5. repeat 3-4 for every example.

In the linear case (no sine terms, no noise) (y1, y2)/c is bivariate normal with unit
variances and correlation p, so the labels' Pearson correlation is p; the sine terms keep
the labels positively related for p > 0 without a closed form (the paper's Figure 2).

Constants and where they come from
----------------------------------
- ``dim`` d = 100: the paper, section 5.1 ("The input dimension is 100").
- ``c`` = 1.0: the paper calls c "a scale constant" and gives no value. 1 keeps w_kᵀx a
  standard normal, so the linear part and the sine terms (each in [−1, 1]) have comparable
  scales. (A public Keras reproduction, drawbridge/keras-mmoe, uses c = 0.3.)
- ``sines`` m = 10: the paper gives no value for m; 10 is what a public reproduction (a
  blog post's NumPy code of this section) uses, the Keras one uses 5. Each sine term has a
  mean square of about 1/2, so at m = 10 the sines add structure of the same order as the
  linear part without drowning it.
- α_i, β_i: "given parameters that control the shape of the sinusoidal functions", no
  distribution given. Here both ~ N(0, 1), drawn once per data set (a seed) and shared by
  both tasks and all examples, as the formula requires (the same α_i, β_i appear in y1 and
  y2); both public reproductions above draw them as standard normals too.
- ``noise``: the paper writes ε ~ N(0, 0.01). Read with the usual N(mean, variance)
  convention that is σ² = 0.01, so the default standard deviation is σ = ``noise`` = 0.1
  (the Keras reproduction also draws its noise with scale 0.1).
- u1, u2: the paper does not say how they are drawn. Here two standard normal vectors,
  orthonormalised by Gram-Schmidt (applied twice, so u1ᵀu2 is zero to rounding, ~1e-17).

Random streams: ``np.random.SeedSequence(seed)`` spawns four independent streams, one each
for (u1, u2), (α, β), x and ε. So for one seed, x does not depend on p, c, ``sines``,
``noise`` or ``linear``, and w1, w2 depend on p only through the formula in step 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MMoESynthetic", "make_mmoe_synthetic"]


@dataclass
class MMoESynthetic:
    """One draw of the two-task data and the parameters that made it.

    Attributes
    ----------
    x : (N, d) ndarray of ``dtype``
        Inputs, i.i.d. standard normal.
    y1, y2 : (N,) ndarray of ``dtype``
        The two regression labels.
    w1, w2 : (d,) float64
        The task weight vectors, ‖w_k‖ = c, cos(w1, w2) = p.
    u1, u2 : (d,) float64
        The orthonormal directions w1 and w2 are built from.
    alpha, beta : (m,) float64
        The sine frequencies α_i and phases β_i (drawn even when ``linear`` is set, so the
        random streams do not depend on it).
    meta : dict
        The arguments of the call (JSON-able).
    """

    x: np.ndarray
    y1: np.ndarray
    y2: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def targets(self) -> dict[str, np.ndarray]:
        """``{"y1": y1, "y2": y2}``."""
        return {"y1": self.y1, "y2": self.y2}


def _orthonormal_pair(rng: np.random.Generator, dim: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = rng.standard_normal((2, dim))
    u1 = a / np.linalg.norm(a)
    for _ in range(2):  # Gram-Schmidt twice: the second pass removes the first's rounding
        b = b - (u1 @ b) * u1
    return u1, b / np.linalg.norm(b)


def _label(x: np.ndarray, w: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
           linear: bool) -> np.ndarray:
    z = x @ w
    if linear or alpha.size == 0:
        return z
    return z + np.sin(z[:, None] * alpha + beta).sum(axis=1)


def make_mmoe_synthetic(n: int, correlation: float, *, dim: int = 100, c: float = 1.0,
                        sines: int = 10, noise: float = 0.1, linear: bool = False,
                        seed: int = 0, dtype=np.float32) -> MMoESynthetic:
    """Draw n examples of the MMoE paper's two regression tasks with task correlation p.

    Parameters
    ----------
    n : int
        Number of examples N (≥ 0).
    correlation : float
        p in [−1, 1], the cosine similarity of w1 and w2 (the paper's "task correlation").
    dim : int
        Input dimension d (≥ 2); the paper's 100.
    c : float
        Scale constant (> 0): ‖w1‖ = ‖w2‖ = c.
    sines : int
        Number m of sine terms (≥ 0).
    noise : float
        Standard deviation σ (≥ 0) of the label noise ε_k; 0.1 is the paper's variance 0.01.
    linear : bool
        Leave out the sine terms: y_k = w_kᵀx + ε_k (the case where the labels' Pearson
        correlation is exactly p in expectation, when ``noise`` = 0).
    seed : int
        Seed of the four random streams (see the module docstring).
    dtype : numpy float dtype
        Dtype of x, y1 and y2 (computed in float64, then cast).

    Returns
    -------
    MMoESynthetic
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"make_mmoe_synthetic: correlation must be in [-1, 1], got {correlation}")
    if n < 0 or dim < 2 or sines < 0:
        raise ValueError(
            f"make_mmoe_synthetic: need n >= 0, dim >= 2, sines >= 0; got n={n}, dim={dim}, "
            f"sines={sines}")
    if not c > 0 or not noise >= 0:
        raise ValueError(f"make_mmoe_synthetic: need c > 0 and noise >= 0; got c={c}, "
                         f"noise={noise}")
    directions, shapes, inputs, noises = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))

    u1, u2 = _orthonormal_pair(directions, dim)
    p = float(correlation)
    w1 = c * u1
    w2 = c * (p * u1 + np.sqrt(1.0 - p * p) * u2)
    alpha = shapes.standard_normal(sines)
    beta = shapes.standard_normal(sines)
    x = inputs.standard_normal((n, dim))
    eps = noise * noises.standard_normal((2, n))
    y1 = _label(x, w1, alpha, beta, linear) + eps[0]
    y2 = _label(x, w2, alpha, beta, linear) + eps[1]

    meta = dict(n=int(n), correlation=p, dim=int(dim), c=float(c), sines=int(sines),
                noise=float(noise), linear=bool(linear), seed=int(seed),
                description="Ma et al. (KDD 2018) section 3.2 synthetic regression tasks")
    return MMoESynthetic(x=x.astype(dtype), y1=y1.astype(dtype), y2=y2.astype(dtype),
                         w1=w1, w2=w2, u1=u1, u2=u2, alpha=alpha, beta=beta, meta=meta)
