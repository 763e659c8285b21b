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

One job per module: ``dataset`` (the container, split, batches), ``synthetic`` (the
generator; its docstring is the generative process and its Bayes rates), ``preprocessing``
and ``npz`` (files).
"""

from .census import load_census
from .dataset import TASKS, Dataset, iterate_batches, train_val_test_split
from .mmoe import make_mmoe_synthetic
from .npz import load_npz, save_npz
from .preprocessing import (
    MinMaxScaler,
    MovingAverage,
    NotFittedError,
    Preprocessor,
    Standardizer,
)
from .synthetic import make_synthetic

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
    "make_mmoe_synthetic",
    "load_census",
]
