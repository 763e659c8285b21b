"""Preprocessing fitted on the training split: standardisation, min-max scaling,
moving-average denoising, and the pipeline that applies them per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset import Dataset

__all__ = ["NotFittedError", "Standardizer", "MinMaxScaler", "MovingAverage",
           "Preprocessor"]


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


def _sequences(ds: Dataset) -> list[str]:
    """The names of the sequence inputs (N, L, F) of ``ds``, in order."""
    return [k for k, v in ds.inputs.items() if v.ndim == 3]


_STEPS = {"denoise": MovingAverage, "standardize": Standardizer, "minmax": MinMaxScaler}


class Preprocessor:
    """The article's preprocessing (section 3.2) for the sequence inputs (N, L, F).

    Each step in ``steps`` (applied in order) is one of ``"denoise"`` (``MovingAverage``),
    ``"standardize"`` (``Standardizer``) and ``"minmax"`` (``MinMaxScaler``). Each sequence
    (user, goods, ads in the article) gets its own statistics, fitted on the training split
    only, each step on the output of the steps before it. Other inputs (tabular columns)
    pass unchanged.

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
        for task in _sequences(train):
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
        missing = [k for k in self.fitted if k not in ds.inputs]
        if missing:
            raise ValueError(f"Preprocessor.transform: the data set lacks the input(s) "
                             f"{', '.join(missing)} it was fitted on")
        inputs = dict(ds.inputs)
        for task, steps in self.fitted.items():
            x = ds.inputs[task]
            for step in steps:
                x = step.transform(x)
            inputs[task] = np.array(x, dtype=np.float32)
        meta = dict(ds.meta)
        meta["preprocessing"] = list(self.steps)
        return Dataset(inputs, dict(ds.targets), meta, dict(ds.latents))

    def fit_transform(self, train: Dataset) -> Dataset:
        """``fit(train)`` then ``transform(train)``."""
        return self.fit(train).transform(train)

    def state(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays: ``steps`` (str array), ``window``, ``inputs`` (the sequence
        inputs' names), ``'{input}/{i}/{key}'``."""
        if self.fitted is None:
            raise NotFittedError("Preprocessor.state called before fit(train)")
        out: dict[str, np.ndarray] = {
            "steps": np.array(self.steps, dtype=np.str_),
            "window": np.array(self.window, dtype=np.int64),
            "inputs": np.array(list(self.fitted), dtype=np.str_),
        }
        for task, steps in self.fitted.items():
            for i, step in enumerate(steps):
                for key, value in step.state().items():
                    out[f"{task}/{i}/{key}"] = value
        return out

    @classmethod
    def from_state(cls, d: dict[str, np.ndarray]) -> Preprocessor:
        """Rebuild a fitted Preprocessor from ``state()``."""
        steps = tuple(str(s) for s in np.asarray(d["steps"]).reshape(-1))
        out = cls(steps, int(np.asarray(d["window"])))
        fitted: dict[str, list[Any]] = {}
        if "inputs" in d:
            names = [str(k) for k in np.asarray(d["inputs"]).reshape(-1)]
        else:   # written before the inputs were named: the article's three
            names = ["user", "goods", "ads"]
        for task in names:
            fitted[task] = []
            for i, name in enumerate(steps):
                prefix = f"{task}/{i}/"
                sub = {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}
                fitted[task].append(_STEPS[name].from_state(sub))
        out.fitted = fitted
        return out
