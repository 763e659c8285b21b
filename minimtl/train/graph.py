"""The training step as a CUDA graph: captured once per batch shape, then replayed
(``fit(..., cuda_graph=True)``, ``minimtl train --cuda-graph``).

An eager step on the GPU is some hundred kernel launches, each a few microseconds of
Python and driver time; at small batches the GPU spends most of the step waiting for the
host. A CUDA graph records the launches of one step once (CuPy's stream capture) and
replays all of them with one call, with the same arguments: the same device addresses,
and every scalar as it was when captured. So the captured step must keep to rules the
eager step can ignore:

- no device-to-host read inside the step (``fit`` reads the losses at intervals, from a
  small buffer the step fills), no host-to-device copy (each batch is copied into static
  input and target arrays before the replay);
- nothing the optimizer computes on the host from its step count (Adam's bias
  corrections): the optimizer must keep that on the device (``capturable``);
- every array the step allocates stays where it was at capture: the capture allocates
  from a private memory pool that lives with the graph, and the parameters' gradients are
  copied into static arrays that the optimizer reads at fixed addresses.

The first batch of each shape runs as an eager step on the static arrays (it compiles
every kernel, creates the optimizer's state and fixes the addresses), then the step is
captured (capture runs nothing); every later batch of that shape is one replay. A step
that cannot be captured (an operation CUDA refuses while capturing, an optimizer that is
not ``capturable``) stops the capture, says why once, and training goes on eagerly with
the same numbers.

On the host emulator of the tests (tests/cuda_host_graphs.py) capture and replay follow
CUDA's rules: capture records without changing any memory that existed before it, reads
and uploads during capture raise, and a replay repeats the recorded launches with their
recorded scalars.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..backend import xp_of
from ..targets import pack_targets, packed_buffer
from ..tensor import Tensor

__all__ = ["GraphStep"]


class GraphStep:
    """``step(inputs, targets)`` (NumPy batches) trains ``model`` one step with
    ``optimizer`` (its update included) by replaying a CUDA graph, and returns what
    ``fit``'s eager step returns: ``n``, the per-task mean losses (``means``) and hit
    counts, as device values that ``fit`` reads at its intervals.

    ``eager_step(inputs, targets)`` is the fallback: it must do the same step (with the
    update). ``why_eager`` is None while graphs work, else the reason they do not.
    """

    def __init__(self, model, optimizer, eager_step, say=print) -> None:
        self.model, self.optimizer, self.eager_step = model, optimizer, eager_step
        self.say = say
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.xp = xp_of(self.params[0].backend)
        self.dtype = self.params[0].dtype
        self.captured: dict[tuple, _Captured] = {}
        self.why_eager: str | None = None
        if not getattr(optimizer, "capturable", False):
            self._give_up(f"{type(optimizer).__name__} computes its update's scalars on the "
                          f"host (not capturable)")

    def __call__(self, inputs: dict, targets: dict) -> dict:
        if self.why_eager is not None:
            return self.eager_step(inputs, targets)
        key = tuple((k, np.shape(v)) for k, v in sorted(inputs.items())) + tuple(
            (k, np.shape(v)) for k, v in sorted(targets.items()))
        step = self.captured.get(key)
        if step is None:
            step = _Captured(self, inputs, targets)
            batch = step.run_eagerly()       # this batch's step; fixes every address
            try:
                step.capture()
            except Exception as exc:         # noqa: BLE001 - any refusal: train eagerly
                self._give_up(f"{type(exc).__name__}: {exc}")
                return batch
            self.captured[key] = step
            return batch
        return step.replay(inputs, targets)

    def _give_up(self, why: str) -> None:
        self.why_eager = why
        if self.say is not None:
            self.say(f"cuda graph: cannot capture the step ({why}); training eagerly")


class _Captured:
    """One batch shape's static arrays, private memory pool and graph."""

    def __init__(self, owner: GraphStep, inputs: dict, targets: dict) -> None:
        self.owner = owner
        model, xp = owner.model, owner.xp
        self.cuda = xp.cuda
        self.stream = self.cuda.Stream(non_blocking=True)
        self.pool = self.cuda.MemoryPool()
        categorical = set(model.categorical_inputs)
        self.x = {k: Tensor(xp.asarray(inputs[k], dtype=np.int64 if k in categorical
                                       else owner.dtype), backend=owner.params[0].backend)
                  for k in model.input_names}
        self.y = pack_targets(model.tasks, targets, xp, owner.dtype)   # as fit's batches
        self.grads = [xp.zeros_like(p.data) for p in owner.params]
        self.n = len(next(iter(targets.values())))
        self.out = None          # (losses..., hits...) of the last step, filled by the step
        self.graph = None

    def load(self, inputs: dict, targets: dict) -> None:
        """The batch into the static arrays (host-to-device copies, outside the graph)."""
        model = self.owner.model
        for k, t in self.x.items():
            t.data.set(np.ascontiguousarray(inputs[k], dtype=t.data.dtype))
        if self.y.buffer is not None:       # one copy: labels, targets (checked first)
            self.y.buffer.set(packed_buffer(model.tasks, targets, self.owner.dtype))
            return
        for task in model.tasks:
            host = task.objective.target_array(task.name, targets[task.name], np,
                                               self.owner.dtype)
            self.y[task.name].set(np.ascontiguousarray(host, dtype=self.y[task.name].dtype))

    def _body(self) -> None:
        """The step on the static arrays: what is captured, and the eager warm-up."""
        model, opt = self.owner.model, self.owner.optimizer
        logits = model(self.x)
        losses = model.losses(logits, self.y)
        opt.zero_grad()
        model.total_loss(losses).backward()
        for p, g in zip(self.owner.params, self.grads):
            if p.grad is not None:           # (a parameter the losses do not reach: None)
                g[...] = p.grad              # the optimizer reads fixed addresses
                p.grad = g
        opt.step()
        values = [losses[t].data for t in model.task_names]
        self.hit_tasks = []
        for t in model.task_names:
            h = model.objectives[t].batch_hits(logits[t].data, self.y[t])
            if h is not None:
                values.append(h)
                self.hit_tasks.append(t)
        # float64 (the dtypes promoted); held here, so the captured array keeps its memory
        # and every replay writes it
        self.out = self.owner.xp.stack(values)

    def _batch(self, out) -> dict:
        names = self.owner.model.task_names
        hits = dict.fromkeys(names, 0.0)
        hits.update({t: out[len(names) + i] for i, t in enumerate(self.hit_tasks)})
        return {"n": self.n, "means": True, "sums": {t: out[i] for i, t in enumerate(names)},
                "hits": hits}

    @contextlib.contextmanager
    def _on_stream(self):
        """Run the block on this graph's stream, after everything the current stream has
        queued, and order everything queued on the current stream afterwards after it
        (the stream is non-blocking: nothing orders the two streams otherwise)."""
        current = self.cuda.get_current_stream()
        self.stream.wait_event(current.record())
        with self.stream:
            yield
        current.wait_event(self.stream.record())

    def run_eagerly(self) -> dict:
        with self.cuda.using_allocator(self.pool.malloc), self._on_stream():
            self._body()
            return self._batch(self.out.copy())

    def capture(self) -> None:
        opt = self.owner.optimizer
        counters = _host_counters(opt)           # capture runs the host side once
        with self.cuda.using_allocator(self.pool.malloc), self._on_stream():
            self.stream.begin_capture()
            try:
                self._body()
            except BaseException:
                try:
                    self.stream.end_capture()    # drop the half-captured graph
                except Exception:                # noqa: BLE001 - the first error is the one
                    pass
                raise
            finally:
                _set_host_counters(opt, counters)
            self.graph = self.stream.end_capture()

    def replay(self, inputs: dict, targets: dict) -> dict:
        """This batch's step: copied into the static arrays, then one graph launch."""
        with self._on_stream():
            self.load(inputs, targets)
            self.graph.launch(self.stream)
            _set_host_counters(self.owner.optimizer, _host_counters(self.owner.optimizer), 1)
            return self._batch(self.out.copy())


def _host_counters(opt) -> tuple[int, list]:
    """The optimizer's step counts as the host knows them (its own and each parameter's)."""
    return opt.step_count, [st.get("step") for st in opt.state]


def _set_host_counters(opt, counters: tuple[int, list], advance: int = 0) -> None:
    """Set the host's step counts (``advance`` steps on): a replay runs the optimizer's
    update on the device only, so the host's copy of the counts is kept here."""
    step, per_param = counters
    opt.step_count = step + advance
    for st, t in zip(opt.state, per_param):
        if t is not None:
            st["step"] = t + advance
