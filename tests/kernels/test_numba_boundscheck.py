"""The bounds check of tests/numba_check.py, shown on a demo kernel: a prange loop that
reads one element past its input. Compiled as the kernels are (parallel), the stray read
goes unreported even with Numba's boundscheck on; compiled by ``checked_njit`` it raises.
"""

import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from tests.numba_check import ENV, checked_njit  # noqa: E402

#: numba's own njit, also where the check run has replaced it
NJIT = getattr(numba.njit, "original", numba.njit)


def _sum_one_too_many(x):
    s = 0.0
    for i in numba.prange(x.shape[0] + 1):     # the bug: one iteration too many
        s += x[i]
    return s


def test_a_parallel_kernel_loses_the_index_error_even_with_boundscheck():
    f = NJIT(parallel=True, boundscheck=True)(_sum_one_too_many)
    # no error, and a sum with one stray element in it: why the check runs serially (if
    # Numba starts raising here, the check could keep the kernels parallel)
    f(np.arange(8.0))


@pytest.mark.parametrize("form", ["bare", "with arguments"])
def test_the_checked_kernel_stops_at_the_stray_read(form):
    njit = checked_njit(NJIT)
    f = njit(_sum_one_too_many) if form == "bare" else \
        njit(cache=True, parallel=True)(_sum_one_too_many)
    with pytest.raises(IndexError):
        f(np.arange(8.0))


def test_the_checked_kernel_gives_the_same_result_in_bounds():
    def total(x):
        s = 0.0
        for i in numba.prange(x.shape[0]):
            s += x[i]
        return s

    x = np.arange(8.0)
    assert checked_njit(NJIT)(cache=True, parallel=True)(total)(x) == 28.0


def _kernel_dispatchers():
    """Every compiled function of the kernel modules that import numba, by name."""
    import importlib
    import pathlib

    from numba.core.registry import CPUDispatcher

    root = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    names = [f"kernels.{p.parent.name}.numba_cpu" for p in root.glob("*/numba_cpu.py")]
    names += [f"kernels.{p.stem}" for p in root.glob("_*.py") if "numba" in p.read_text()
              and "cuda" not in p.stem]
    found = {}
    for name in sorted(names):
        module = importlib.import_module(name)
        found.update({f"{name}.{k}": v for k, v in vars(module).items()
                      if isinstance(v, CPUDispatcher) and v.__module__ == name})
    return found


@pytest.mark.skipif(os.environ.get(ENV) != "1",
                    reason=f"runs in the bounds-check run only ({ENV}=1, "
                           "tests/numba_boundscheck.sh)")
def test_in_the_check_run_every_kernel_is_serial_and_bounds_checked():
    kernels = _kernel_dispatchers()
    assert len(kernels) >= 50
    for name, dispatcher in kernels.items():
        options = dispatcher.targetoptions
        assert options.get("boundscheck") is True and not options.get("parallel"), name
