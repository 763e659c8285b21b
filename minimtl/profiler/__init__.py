"""Where a training step's time goes: a per-op profiler with a table, a Chrome trace and a
picture.

    with minimtl.profile() as prof:
        for x, y in batches:
            step(x, y)                 # forward, losses, backward, optimizer.step()
    print(prof.table())                # ms a step per op and direction, GFLOP/s, roofline
    prof.chrome_trace("trace.json")    # open in https://ui.perfetto.dev or chrome://tracing
    prof.plot("profile.png")

What is recorded, per op (``Function.op_name``) and direction: wall time, calls, backend,
input shapes; the kernel calls inside (``kernels/<op>`` ``fwd``/``bwd``/``update``); the
backward walk; each ``Optimizer.step``. FLOPs and bytes per call come from
minimtl/opcost.py, the machine's matmul peak and copy bandwidth from a short measurement in
the same process (``opcost.measure_peaks``, run by ``table``, not while profiling).

Steps: each ``prof.step()`` ends a step (the first began when the profile did); a profile
without any ``prof.step()`` ends a step after every optimizer step, so a profiled
``minimtl.train.fit`` or a plain training loop gets its steps with no marks; a profile
with neither is one step. "python between ops" is a step's wall time minus its ops, its
backward walk and its optimizer step: the Python around the ops (model code, losses,
data); "autograd walk" is the walk's own bookkeeping (sorting the graph, accumulating).

Zero cost when off: nothing in the engine checks for a profiler. While a profile is open,
instrumented versions replace ``Function.apply``, each Function's ``backward``, the walks
(``autograd._walk``, ``gradients._walk``), the kernel lookup (``kernel_module`` as
function.py and optim.py hold it) and ``Optimizer.step``; leaving the block, normally or
by an exception, puts the originals back (the same objects). One profile at a time in a
process (opening a second raises ``RuntimeError``); it records the thread that opened it:
other threads' ops run uninstrumented and are not recorded. On the cupy backend every op
and kernel is synchronized so that its time is the device's (``sync=False`` times launches
only).

One job per file:
    recording.py   ``Profile``: the instrumented engine while the block is open, the events
                   it records, the steps they fall in
    report.py      the events as rows (times, FLOPs, bytes, roofline) and as a table
    trace.py       the events as a Chrome trace (Trace Event Format JSON)
and the picture is drawn by minimtl/plot.py (``plot_profile``).
"""

from __future__ import annotations

from .recording import Profile

__all__ = ["profile", "Profile"]


def profile(*, sync: bool = True) -> Profile:
    """A profile to open with ``with``; see the module docstring."""
    return Profile(sync=sync)
