"""A batch's targets on the model's device: ``pack_targets`` checks them on the host (each
task's ``check_targets``: one line naming the task) and, where all are labels or float
targets, uploads them as one buffer that also holds what the fused ``head_losses`` kernel
needs (each task's kind, columns and weight): one host-to-device copy per batch and no
device read in the step. ``packed_buffer`` refills such an upload in place (a CUDA graph's
static targets)."""

from __future__ import annotations

import numpy as np

__all__ = ["TaskTargets", "pack_targets", "packed_buffer"]


class TaskTargets(dict):
    """A batch's targets, task name -> the array its objective's ``loss`` takes (as
    ``target_array`` makes them). ``tasks``: the tasks they were made for; ``packed``:
    (labels (Tm, N), targets (S,), spec (T, 4), weights (T,)), the ``head_losses`` inputs,
    views of the same one upload as the per-task arrays (None where a target cannot be
    packed: soft multiclass rows, or targets already on a device); ``checked``: every
    target passed ``check_targets`` on the host."""

    def __init__(self, items, tasks: tuple, packed: tuple | None = None,
                 checked: bool = False) -> None:
        super().__init__(items)
        self.tasks = tasks
        self.packed = packed
        self.checked = checked
        self.made = tuple(self.values())
        self.buffer = None      # the one device array the packed targets are views of

    def unchanged(self, tasks) -> bool:
        """Made for ``tasks`` and still holding the arrays made (none replaced since)."""
        now = tuple(self.values())
        return self.tasks == tuple(tasks) and len(now) == len(self.made) and all(
            a is b for a, b in zip(now, self.made))


def _on_host(target) -> bool:
    return type(target) is np.ndarray or isinstance(target, (list, tuple))


def pack_targets(tasks, targets: dict, xp, dtype) -> TaskTargets:
    """``targets`` (task name -> NumPy array) as a ``TaskTargets`` on array module ``xp``:
    host targets are checked first (``check_targets``: the task's name and what is wrong,
    before any upload); labels and float targets go up in one buffer (module doc)."""
    tasks = tuple(tasks)
    host = {t.name: np.asarray(targets[t.name]) for t in tasks if _on_host(targets[t.name])}
    for t in [t for t in tasks if t.name in host]:          # before any upload
        t.objective.check_targets(t.name, host[t.name], t.outputs)
    rows = {len(a) for a in host.values()}
    if len(host) < len(tasks) or len(rows) != 1 or any(
            t.kind == "multiclass" and host[t.name].ndim != 1 for t in tasks):
        return TaskTargets({t.name: t.objective.target_array(t.name, targets[t.name], xp,
                                                             dtype) for t in tasks}, tasks,
                           checked=len(host) == len(tasks))
    buf, edges, spec = _packed(tasks, host, dtype)
    (N,) = rows
    dtype = np.dtype(dtype)
    T, Tm = len(tasks), sum(t.kind == "multiclass" for t in tasks)
    dev = xp.asarray(buf)                                     # the one transfer
    parts = [dev[lo:hi] for lo, hi in zip(edges[:-1], edges[1:])]
    weights, spec_dev = parts[0].view(np.float64), parts[1].view(np.int64).reshape(T, 4)
    labels_dev, flat = parts[2].view(np.int64).reshape(Tm, N), parts[3].view(dtype)
    items = {t.name: labels_dev[j] if t.kind == "multiclass" else      # (N,) or (N, K)
             flat[N * j:N * (j + K)].reshape(N, K) for t, (_, _, K, j) in zip(tasks, spec)}
    packed = TaskTargets(items, tasks, (labels_dev, flat, spec_dev, weights), checked=True)
    packed.buffer = dev
    return packed


def packed_buffer(tasks, targets: dict, dtype) -> np.ndarray:
    """The host bytes ``pack_targets`` uploads for ``targets`` (checked first), to refill
    an earlier upload of the same tasks and shapes in place (a CUDA graph's static
    targets: ``TaskTargets.buffer``)."""
    host = {t.name: np.asarray(targets[t.name]) for t in tasks}
    for t in tasks:
        t.objective.check_targets(t.name, host[t.name], t.outputs)
    return _packed(tuple(tasks), host, dtype)[0]


def _packed(tasks: tuple, host: dict, dtype) -> tuple[np.ndarray, np.ndarray, list]:
    """The one buffer of ``pack_targets`` on the host, its part edges and the spec rows."""
    (N,) = {len(a) for a in host.values()}
    dtype = np.dtype(dtype)
    spec, labels, floats, start = [], [], [], 0
    for t in tasks:
        if t.kind == "multiclass":
            spec.append((t.objective.fused_kind, start, t.outputs, len(labels)))
            labels.append(host[t.name].astype(np.int64, copy=False))
        else:
            spec.append((t.objective.fused_kind, start, t.outputs, sum(
                a.shape[1] for a in floats)))
            floats.append(host[t.name].astype(dtype, copy=False).reshape(N, t.outputs))
        start += t.outputs
    T, Tm, V = len(tasks), len(labels), sum(a.shape[1] for a in floats)
    # one buffer: weights (T,) f64 | spec (T, 4) i64 | labels (Tm, N) i64 | targets (V·N,)
    edges = np.cumsum([0, 8 * T, 32 * T, 8 * Tm * N, dtype.itemsize * V * N])
    buf = np.empty(int(edges[-1]), dtype=np.uint8)
    parts = [buf[lo:hi] for lo, hi in zip(edges[:-1], edges[1:])]
    parts[0].view(np.float64)[:] = [t.weight for t in tasks]
    parts[1].view(np.int64)[:] = np.asarray(spec, dtype=np.int64).reshape(-1)
    if Tm:
        parts[2].view(np.int64).reshape(Tm, N)[:] = labels
    if V:
        parts[3].view(dtype)[:] = np.concatenate([a.reshape(-1) for a in floats])
    return buf, edges, spec
