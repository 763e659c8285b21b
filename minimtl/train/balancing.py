"""Task balancing: how the task losses make one total (loss weighting), how their
gradients on the shared parameters are combined (PCGrad), and what those gradients say
about each other (conflict diagnostics).

Loss weighting, ``total = Σ_k w_k·L_k`` with w_k chosen by

- ``fixed``: the tasks' declared weights.
- ``uncertainty`` (Kendall, Gal & Cipolla, CVPR 2018, "Multi-task learning using
  uncertainty to weigh losses"): a learned s_k = log σ_k² per task; a regression task adds
  ½·exp(−s_k)·L_k + ½·s_k, a classification task exp(−s_k)·L_k + ½·s_k (the paper's
  Gaussian and softmax-with-temperature likelihoods; s_k learned with the model).
- ``gradnorm`` (Chen et al., ICML 2018, "GradNorm"): w_k learned so that the norms
  G_k = ‖∇_W w_k·L_k‖ on the last shared layer W approach Ḡ·r_k^α, with Ḡ the mean norm,
  r_k = L̃_k / mean L̃, L̃_k = L_k(t)/L_k(0) and asymmetry α (1.5 by default). The weights
  take a gradient step on Σ_k |G_k − Ḡ·r_k^α| (the target held constant, as in the paper),
  are kept positive and renormalised to sum to K.
- ``dwa`` (Liu, Johns & Davison, CVPR 2019, "End-to-end multi-task learning with
  attention"): w_k(t) = K·exp(r_k/T) / Σ_i exp(r_i/T), r_k = L_k(t−1)/L_k(t−2) from the
  last two epochs' mean losses, temperature T = 2; w = 1 for the first two epochs.

Gradient surgery, PCGrad (Yu et al., NeurIPS 2020, "Gradient surgery for multi-task
learning"): each task's gradient g_i on the shared parameters is projected, task by task
in a random order, onto the normal plane of every g_j it conflicts with (g_i·g_j < 0):
g_i ← g_i − (g_i·g_j / ‖g_j‖²)·g_j; the update is Σ_i g_i.

Diagnostics, for each task pair: the cosine of their shared gradients (negative =
conflict), the gradient magnitude similarity 2‖g_i‖‖g_j‖ / (‖g_i‖² + ‖g_j‖²) (1 = equal
norms, Yu et al. 2020), and per epoch the conflict rate (share of measured steps with a
negative cosine).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["WEIGHTINGS", "Weighting", "Fixed", "Uncertainty", "GradNorm", "DWA",
           "make_weighting", "pcgrad", "cosine", "magnitude_similarity", "pair_stats"]


class Weighting:
    """How the total loss weighs the task losses. ``total`` makes the differentiable
    total of one batch; ``after_backward`` / ``epoch_end`` let a scheme adapt; ``weights``
    are the current w_k (for the history)."""

    name = ""
    #: does the scheme need each task's gradient on the last shared layer every step?
    needs_task_gradients = False

    def __init__(self, tasks) -> None:
        self.tasks = list(tasks)
        self.names = [t.name for t in self.tasks]

    def parameters(self) -> list:
        """Learned parameters of the scheme itself (optimised with the model's)."""
        return []

    def weights(self) -> dict[str, float]:
        raise NotImplementedError

    def total(self, losses: dict):
        """Σ_k w_k·L_k (and the scheme's own terms), a Tensor."""
        w = self.weights()
        total = None
        for n in self.names:
            term = losses[n] * float(w[n])
            total = term if total is None else total + term
        return total

    def task_gradients(self, norms: dict[str, float], losses: dict[str, float]) -> None:
        """For ``needs_task_gradients``: each task's ‖∇_W L_k‖ and loss this step."""

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """The epoch's mean training loss per task."""

    def state(self) -> dict:
        """What resuming needs (JSON-able)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Restore ``state``."""


class Fixed(Weighting):
    """The tasks' declared weights, unchanged."""

    name = "fixed"

    def weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.tasks}


class Uncertainty(Weighting):
    """Kendall et al. 2018: learned log-variances s_k (module docstring)."""

    name = "uncertainty"

    def __init__(self, tasks, *, dtype=np.float32, backend: str | None = None) -> None:
        super().__init__(tasks)
        from ..nn import Parameter

        self.log_var = Parameter(np.zeros(len(self.tasks), dtype=dtype), backend=backend)
        #: ½ for regression (Gaussian likelihood), 1 for classification
        self.scale = np.array([0.5 if t.kind == "regression" else 1.0 for t in self.tasks],
                              dtype=dtype)

    def parameters(self) -> list:
        return [self.log_var]

    def state(self) -> dict:
        return {"log_var": [float(v) for v in np.asarray(self.log_var.numpy())]}

    def load_state(self, state: dict) -> None:
        self.log_var.data[...] = _like(self.log_var, np.asarray(state["log_var"]))

    def weights(self) -> dict[str, float]:
        s = np.asarray(self.log_var.numpy(), dtype=np.float64)
        return {n: float(c * math.exp(-v)) for n, c, v in zip(self.names, self.scale, s)}

    def total(self, losses: dict):
        from .. import functional as F
        from ..tensor import Tensor

        scale = Tensor(_like(self.log_var, self.scale), backend=self.log_var.backend)
        precision = F.exp(-self.log_var) * scale                    # (K,) the w_k
        total = None
        for i, n in enumerate(self.names):
            term = losses[n] * precision[i] + self.log_var[i] * 0.5
            total = term if total is None else total + term
        return total


class GradNorm(Weighting):
    """Chen et al. 2018 (module docstring); ``lr`` is the weights' own step size."""

    name = "gradnorm"
    needs_task_gradients = True

    def __init__(self, tasks, *, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(tasks)
        self.alpha, self.lr = float(alpha), float(lr)
        self.w = np.ones(len(self.tasks))
        self.initial: np.ndarray | None = None

    def weights(self) -> dict[str, float]:
        return dict(zip(self.names, map(float, self.w)))

    def state(self) -> dict:
        return {"w": self.w.tolist(),
                "initial": None if self.initial is None else self.initial.tolist()}

    def load_state(self, state: dict) -> None:
        self.w = np.asarray(state["w"], dtype=np.float64)
        self.initial = None if state["initial"] is None else np.asarray(state["initial"])

    def task_gradients(self, norms: dict[str, float], losses: dict[str, float]) -> None:
        g = np.array([norms[n] for n in self.names], dtype=np.float64)   # ‖∇_W L_k‖
        L = np.array([losses[n] for n in self.names], dtype=np.float64)
        if self.initial is None:
            self.initial = np.where(L > 0, L, 1.0)
        self.w = gradnorm_step(self.w, g, L / self.initial, self.alpha, self.lr)


def gradnorm_step(w: np.ndarray, g: np.ndarray, ratio: np.ndarray, alpha: float,
                  lr: float) -> np.ndarray:
    """One GradNorm update of the weights w (K,) from the task gradient norms g_k =
    ‖∇_W L_k‖ and the loss ratios L̃_k: G_k = w_k·g_k, target Ḡ·(L̃_k/mean L̃)^α (held
    constant), ∂Σ|G − target|/∂w_k = sign(G_k − target_k)·g_k; then w kept positive and
    renormalised to sum to K."""
    G = w * g
    target = G.mean() * (ratio / ratio.mean()) ** alpha
    w = w - lr * np.sign(G - target) * g
    w = np.maximum(w, 1e-3)
    return w * (len(w) / w.sum())


class DWA(Weighting):
    """Liu et al. 2019 (module docstring)."""

    name = "dwa"

    def __init__(self, tasks, *, temperature: float = 2.0) -> None:
        super().__init__(tasks)
        self.temperature = float(temperature)
        self.history: list[np.ndarray] = []
        self.w = np.ones(len(self.tasks))

    def weights(self) -> dict[str, float]:
        return dict(zip(self.names, map(float, self.w)))

    def state(self) -> dict:
        return {"w": self.w.tolist(), "history": [h.tolist() for h in self.history]}

    def load_state(self, state: dict) -> None:
        self.w = np.asarray(state["w"], dtype=np.float64)
        self.history = [np.asarray(h, dtype=np.float64) for h in state["history"]]

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        self.history.append(np.array([mean_losses[n] for n in self.names], dtype=np.float64))
        if len(self.history) >= 2:
            self.w = dwa_weights(self.history[-1], self.history[-2], self.temperature)


def dwa_weights(last: np.ndarray, before: np.ndarray, temperature: float) -> np.ndarray:
    """K·softmax(r/T) with r_k = last_k / before_k (a loss that stopped falling weighs
    more). A weight that would underflow to 0 (ratios hundreds of T apart) is kept at
    1e-8 and the weights renormalised to sum to K, so every task keeps some weight."""
    r = last / np.where(before > 0, before, 1.0)
    e = np.exp((r - r.max()) / temperature)
    w = np.maximum(len(r) * e / e.sum(), 1e-8)
    return w * (len(w) / w.sum())


WEIGHTINGS = {"fixed": Fixed, "uncertainty": Uncertainty, "gradnorm": GradNorm, "dwa": DWA}


def make_weighting(name: str, tasks, **kw) -> Weighting:
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; known: {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[name](tasks, **kw)


def _like(param, values: np.ndarray):
    from ..backend import xp_of

    return xp_of(param.backend).asarray(values, dtype=param.data.dtype)


# --- gradient surgery and diagnostics, on flat gradients (one vector per task) ----------
def pcgrad(grads: list, rng: np.random.Generator):
    """PCGrad's combined update Σ_i g_i' from the task gradients ``grads`` (flat arrays of
    one length); each g_i' is g_i projected off every g_j it conflicts with, the j in a
    random order drawn from ``rng`` per task."""
    projected = []
    for i, g in enumerate(grads):
        gi = g.copy()
        others = [j for j in range(len(grads)) if j != i]
        for j in rng.permutation(others) if others else []:
            gj = grads[int(j)]
            dot = float((gi * gj).sum())
            if dot < 0:
                gi -= (dot / float((gj * gj).sum())) * gj
        projected.append(gi)
    total = projected[0]
    for gi in projected[1:]:
        total = total + gi
    return total


def cosine(a, b) -> float:
    """cos(a, b); 0 when either is zero."""
    na, nb = float(np.sqrt((a * a).sum())), float(np.sqrt((b * b).sum()))
    return 0.0 if na == 0 or nb == 0 else float((a * b).sum()) / (na * nb)


def magnitude_similarity(a, b) -> float:
    """2‖a‖‖b‖ / (‖a‖² + ‖b‖²): 1 for equal norms, towards 0 as they differ."""
    sa, sb = float((a * a).sum()), float((b * b).sum())
    return 1.0 if sa + sb == 0 else 2 * math.sqrt(sa * sb) / (sa + sb)


def pair_stats(grads: dict) -> dict[str, dict[str, float]]:
    """For each task pair "a|b": the cosine and magnitude similarity of their gradients."""
    return {f"{a}|{b}": {"cosine": cosine(grads[a], grads[b]),
                         "magnitude": magnitude_similarity(grads[a], grads[b])}
            for a, b in itertools.combinations(grads, 2)}
