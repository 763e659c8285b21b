"""Data-parallel training over MPI (``mpi4py``, the ``mpi`` extra) and, on GPUs, NCCL.

    mpiexec -n 2 minimtl train --epochs 3          # two replicas, one global batch of 32

One replica of the model per rank. How a step works (``fit(..., dist=ProcessGroup())``):

1. Every rank draws the same shuffle from the seed and takes its contiguous shard of each
   global batch (``shard_bounds``): rows ``n·r // N`` to ``n·(r+1) // N`` of the batch's n.
2. Forward and backward on the shard; each gradient is weighed by ``n_r / n`` and the
   ranks' gradients are summed with one ``Iallreduce`` per bucket of a flat buffer
   (``buckets``), each started during the backward walk as soon as its parameters'
   gradients are complete (``overlap``). The result is the gradient of the global
   batch's mean loss, so N ranks with a global batch B train exactly as one process
   with batch B (same learning rate, same steps), up to the rounding of the sums' order.
3. The per-task loss sums, hit counts and the Ctrl-C flag travel in a small vector with the
   gradients, so every rank logs, checks and stops at the same step.
4. Every rank applies the same optimizer step to the same gradients; the replicas stay
   bitwise equal (checked once per epoch, ``check_replicas``).

Parameters start as rank 0's (``broadcast_parameters``); ``--resume`` reads the checkpoint
on rank 0 and broadcasts it, so the number of ranks may change between runs. Evaluation
shards the data set and gathers the predictions (metrics over the whole set, never an
average of per-rank AUCs). Only rank 0 prints and writes files. Faults: see ``group``.

``launched_size()`` is how the ``minimtl`` command knows it runs under ``mpiexec``.
"""

from __future__ import annotations

import os

from .buckets import GradientBuckets
from .group import DistributedError, ProcessGroup, shard_bounds

__all__ = ["ProcessGroup", "DistributedError", "GradientBuckets", "shard_bounds",
           "launched_size", "mpi_available"]

#: the number of ranks, as MPICH's and Open MPI's launchers tell each rank
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launched_size() -> int:
    """The number of ranks ``mpiexec`` started (1 when not started by a launcher)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def mpi_available() -> tuple[bool, str]:
    """(True, "") when mpi4py imports and finds an MPI library, else (False, why)."""
    try:
        from mpi4py import MPI

        MPI.Get_library_version()
    except Exception as e:          # ImportError, or a missing libmpi
        return False, f"mpi4py is not usable ({type(e).__name__}: {e}); pip install " \
                      f"'minimtl[mpi]'"
    return True, ""
