"""Shared test configuration: Hypothesis profiles, the backend fixture, GPU auto-skip.

Profiles (``HYPOTHESIS_PROFILE``; default ``ci`` when ``CI`` is set, else ``dev``):
``ci`` 25 derandomized examples, ``dev`` 10 examples, ``thorough`` 300 examples (by hand).
``MINIMTL_REQUIRE_GPU=1`` turns the skip of ``gpu`` tests into a failure.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

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


#: Backends as pytest params; ``cupy`` carries the gpu mark.
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("numba", id="numba"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    """Each backend name in turn (session-scoped so @given tests may use it)."""
    return request.param
