"""CUDA-graph stream capture and replay, modelled on the host emulator (tests/cuda_host.py
with the counting arrays of tests/cuda_host_launches.py).

On a GPU, ``stream.begin_capture()`` … ``stream.end_capture()`` records every kernel,
memset and device copy launched on the stream into a graph *without running any of
them*; ``graph.launch()`` then replays the recorded launches, with the same arguments: the
same device addresses, and every scalar (a Python float passed to a kernel, a shape) as
it was at capture. Python itself runs once, at capture. So a captured training step goes
wrong in ways an eager step never shows: a value computed on the host (Adam's bias
correction from a host step count) is frozen; a read of a device value (``float(loss)``)
or a copy from host memory during capture is an error; an array the step allocates must
stay where it is for every replay; and the outputs hold nothing until the first replay.

This module reproduces those rules, so that the graph path of ``minimtl.train`` can be
tested without a GPU:

- during a capture every operation on device arrays (cupy's kernels as the counting arrays
  see them, and our CUDA kernels) is *recorded* as a closure over the same array objects
  and its scalar arguments as they are now;
- none of our kernels runs during the capture (one may write through a table of device
  addresses, as Adam's multi-tensor kernel does, so its arguments do not tell what it
  writes); the outputs it was given that the capture allocated read as zeros. cupy's
  operations run only when they write memory allocated during this capture (scratch,
  whose contents are garbage on a GPU until replay), never when they write memory that
  existed before (parameters, optimizer state, static buffers): capture changes no state;
- ``end_capture`` fills every array allocated during the capture with NaN (−1 for
  integers), so a result read before the first replay is visibly wrong, as on a GPU;
- a device-to-host read or a host-to-device copy while capturing raises
  ``CaptureError``, as CUDA's capture mode does;
- ``Graph.launch()`` runs the recorded closures in order.

``install(fake)`` gives a ``FakeCupy``'s ``cuda`` namespace the ``Stream``, ``Graph`` and
memory-pool stand-ins ``minimtl.train.graph`` uses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CaptureError", "Stream", "Graph", "capturing", "install", "note_fresh",
           "writes_old_memory", "record", "refuse"]


class CaptureError(RuntimeError):
    """What CUDA refuses while a stream is capturing."""


class _Capture:
    """The capture in progress: its replay list and the arrays it allocated."""

    def __init__(self) -> None:
        self.replay: list = []
        self.fresh: dict[int, np.ndarray] = {}    # id -> owning array (kept alive)


#: the capture in progress, or None
capturing: _Capture | None = None


def _owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def note_fresh(a) -> None:
    """``a`` was allocated now: during a capture, its memory is the capture's scratch."""
    if capturing is not None and isinstance(a, np.ndarray):
        owner = _owner(a)
        capturing.fresh.setdefault(id(owner), owner)


def writes_old_memory(*targets) -> bool:
    """Whether writing ``targets`` during the capture would change memory that existed
    before it (then the write is only recorded, not run)."""
    return capturing is not None and any(
        isinstance(t, np.ndarray) and id(_owner(t)) not in capturing.fresh for t in targets)


def record(replay) -> None:
    """Add ``replay`` (a function of no arguments) to the capture in progress."""
    if capturing is not None:
        capturing.replay.append(replay)


def refuse(what: str) -> None:
    if capturing is not None:
        raise CaptureError(f"{what} while a stream is capturing (not allowed in a CUDA "
                           f"graph)")


class Graph:
    """A captured graph: ``launch()`` replays its operations in order."""

    def __init__(self, replay: list) -> None:
        self._replay = replay

    def launch(self, stream=None) -> None:
        global capturing
        if capturing is not None:
            raise CaptureError("a graph launched while a stream is capturing")
        for op in self._replay:
            op()


class Stream:
    """cupy.cuda.Stream with capture: ``with stream:``, ``begin_capture``,
    ``end_capture``, ``is_capturing``, ``synchronize``."""

    def __init__(self, non_blocking: bool = False, null: bool = False) -> None:
        self.non_blocking = non_blocking

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def begin_capture(self, mode=None) -> None:
        global capturing
        if capturing is not None:
            raise CaptureError("begin_capture: a capture is already in progress")
        capturing = _Capture()

    def is_capturing(self) -> bool:
        return capturing is not None

    def end_capture(self) -> Graph:
        global capturing
        if capturing is None:
            raise CaptureError("end_capture: no capture in progress")
        done, capturing = capturing, None
        for owner in done.fresh.values():      # garbage until the first replay
            owner.view(np.ndarray).fill(np.nan if owner.dtype.kind in "fc" else -1)
        return Graph(done.replay)

    def synchronize(self) -> None:
        refuse("a stream synchronisation")

    def record(self, event=None):
        """An event: the host runs everything in order, so there is nothing to wait for."""
        return event if event is not None else object()

    def wait_event(self, event) -> None:
        return None


class _MemoryPool:
    """cupy.cuda.MemoryPool: NumPy arrays never move, so one allocator is as good as any."""

    def malloc(self, size: int):
        raise NotImplementedError("the host emulator allocates with NumPy")

    def free_all_blocks(self) -> None:
        return None


class _UsingAllocator:
    def __init__(self, allocator=None) -> None:
        self.allocator = allocator

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


def install(monkeypatch, fake) -> None:
    """Give ``fake`` (a FakeCupy or CountingFakeCupy) the capture API of ``cupy.cuda``
    for the test (``monkeypatch`` undoes it)."""
    cuda = fake.cuda
    for name, value in (("Stream", Stream), ("Graph", Graph), ("MemoryPool", _MemoryPool),
                        ("using_allocator", _UsingAllocator),
                        ("get_current_stream", staticmethod(lambda: Stream()))):
        monkeypatch.setattr(cuda, name, value, raising=False)
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "capturing", None)
