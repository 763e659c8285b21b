"""Shared test configuration: Hypothesis profiles, the backend fixture, GPU auto-skip.

The ``backend`` fixture runs a test on ``numpy``, ``numba`` and ``cupy`` (a GPU), and,
on a machine without a GPU but with g++, on ``cuda_host``: the CUDA kernels of every
``kernels/<op>/cupy_cuda.py`` compiled for the CPU (tests/cuda_host.py) and fed NumPy
arrays, at the same parameter draws as the other backends. Kernel-level helpers
(``tests._util.kernel``, ``call``, ``to_device``) know the name; a test that builds
tensors maps it with ``tests._util.tensor_backend``.

Profiles (``HYPOTHESIS_PROFILE``; default ``ci`` when ``CI`` is set, else ``dev``):
``ci`` 25 derandomized examples, ``dev`` 10 examples, ``thorough`` 300 examples (by hand).
``MINIMTL_REQUIRE_GPU=1`` turns the skip of ``gpu`` tests into a failure;
``MINIMTL_NUMBA_BOUNDSCHECK=1`` compiles every Numba kernel serial and bounds-checked
(tests/numba_check.py, tests/numba_boundscheck.sh).
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

from tests.numba_check import install as _install_numba_check

# ``MINIMTL_NUMBA_BOUNDSCHECK=1``: every Numba kernel compiled serial and bounds-checked
# (tests/numba_check.py); installed here, before any test module imports a kernel
_install_numba_check()

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("thorough", max_examples=300, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _gpu_available() -> bool:
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


GPU = _gpu_available()
REQUIRE_GPU = os.environ.get("MINIMTL_REQUIRE_GPU") == "1"


def pytest_collection_modifyitems(config, items):
    if GPU:
        return
    for item in items:
        if "gpu" in item.keywords:
            if REQUIRE_GPU:
                item.add_marker(pytest.mark.xfail(reason="no GPU", run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU and cupy"))


def pytest_sessionstart(session):
    if REQUIRE_GPU and not GPU:
        raise pytest.UsageError("MINIMTL_REQUIRE_GPU=1 but no CUDA GPU/cupy is available")


#: The CUDA kernels run on the host where no GPU runs them (never both: on a GPU machine
#: the host patch would swap cupy out from under the gpu tests).
HOST_CUDA = not GPU and shutil.which("g++") is not None

#: Backends as pytest params; ``cupy`` carries the gpu mark.
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("numba", id="numba"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
] + ([pytest.param("cuda_host", id="cuda_host", marks=pytest.mark.cuda_host)]
     if HOST_CUDA else [])


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    """Each backend name in turn (session-scoped so @given tests may use it). For
    ``cuda_host`` the ``cupy_cuda`` kernel modules run on the host while its tests run."""
    if request.param != "cuda_host":
        yield request.param
        return
    from tests.cuda_host import patch_kernels

    with pytest.MonkeyPatch.context() as mp:
        patch_kernels(mp)
        yield "cuda_host"
