"""Neural-network building blocks: ``Module``/``Parameter``, layers, initialisers.

    from minimtl import nn
    model = nn.Sequential(nn.Conv1d(32, 64, 3, activation="relu"), nn.MaxPool1d(2),
                          nn.Flatten(), nn.Linear(64 * 23, 1))   # for x (N, 32, 48)
"""

from . import init
from .layers import (
    GRU,
    LSTM,
    RNN,
    AvgPool1d,
    Conv1d,
    Conv1dReluMaxPool1d,
    Dropout,
    Embedding,
    Flatten,
    Linear,
    MaxPool1d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "Module", "Parameter", "ModuleList", "Sequential", "init",
    "Linear", "Conv1d", "Conv1dReluMaxPool1d", "MaxPool1d", "AvgPool1d", "RNN", "LSTM", "GRU",
    "Embedding", "Dropout", "Flatten", "ReLU", "Sigmoid", "Tanh", "Softmax",
]
