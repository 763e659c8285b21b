"""Models built on minimtl: the article's seed multi-task network."""

from .multitask import MultiTaskNet, Tower

__all__ = ["MultiTaskNet", "Tower"]
