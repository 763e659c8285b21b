"""Models built on minimtl: the article's seed multi-task network, and multi-task
architectures over a shared representation (single-task, shared-bottom, OMoE, MMoE, CGC,
PLE)."""

from .blocks import Architecture
from .moe import MMoE, OMoE, SharedBottom, SingleTask
from .multitask import MultiTaskNet, Tower
from .ple import CGC, PLE

__all__ = ["MultiTaskNet", "Tower", "Architecture", "SingleTask", "SharedBottom", "OMoE",
           "MMoE", "CGC", "PLE"]
