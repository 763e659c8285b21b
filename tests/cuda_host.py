"""Run CUDA kernels on the CPU: the ``SOURCE`` of a ``kernels/<op>/cupy_cuda.py`` is
compiled as host C++ with stand-ins for the CUDA built-ins, every block of a launch runs
in turn, and ``cupy`` is replaced by NumPy in the module under test. So the module's own
Python wrappers (shapes, layouts, argument order) and its kernels' index arithmetic run
without a GPU.

Two ways of running a block:
- kernels in which each thread works alone: the threads one after another;
- kernels with ``__shared__`` memory and ``__syncthreads()``: every CUDA thread of a block
  is a fiber (``ucontext``) with its own stack; ``__syncthreads()`` hands control back to
  a scheduler that runs each fiber to its next barrier in turn, so no thread passes a
  barrier before all have reached it. Shared arrays are static (one copy, used by one
  block at a time) and poisoned at each block's start (NaN floats, extreme ints), since a
  GPU block's shared memory starts as garbage, not as the previous block's values.
  Every thread of a block must reach every barrier, as CUDA requires.
``__shfl_xor_sync`` is two barrier rounds of the block (post, then read the partner's
value); other warp operations are not emulated (``supports``).

Atomics and fences. ``atomicAdd`` (int, unsigned, unsigned long long, float, double),
``atomicSub``, ``atomicExch``, ``atomicMin``/``atomicMax`` (int, unsigned), ``atomicInc``,
``atomicDec`` and ``atomicCAS`` are plain read-modify-writes, and ``__threadfence()`` (and
its ``_block``/``_system`` forms) does nothing: only one thread runs at any moment and it
switches only at a barrier, so every atomic is exact and every write is seen by whatever
runs next. What this models: a kernel's arithmetic on counters and flags, for instance the
"last block done" pattern (each block publishes a partial result, fences, takes a ticket
from a counter; the block that draws the last ticket combines the partials). What it cannot
model: real concurrency (no two threads ever race, so a missing fence, a missing
``volatile`` or an atomic that should have been one goes unseen), and the order in which
blocks run and finish, which the GPU does not promise: a block that waits for another
block (a spin lock, a grid-wide barrier) hangs here, and a result that depends on which
block finishes last (a float ``atomicAdd`` from several blocks, or the last block summing
in ticket order) is reproducible here and not on a GPU. Tests guard the second with
``block_order``: the blocks of every launch run in reverse order, or in a shuffled order,
and the results must be bitwise those of the natural order. Inside a block, ``thread_order``
does the same for the threads (reversed, or shuffled afresh every round between two
barriers): in the natural order a missing ``__syncthreads()`` goes unseen whenever the
thread that writes shared memory happens to run before the one that reads it.

Floating point: the host compiler runs without FMA contraction; the ``__f*_rn``
intrinsics map to the plain operations, ``#pragma unroll`` is ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["supports", "HostModule", "patch_module", "FakeCupy", "poison", "patch_cupy_backend",
           "patch_kernels", "default_cache", "lower_thresholds", "block_order", "thread_order"]

PRELUDE = r"""
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <ucontext.h>
#include <limits>
#include <type_traits>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
struct minimtl_dim { unsigned x, y, z; };
static minimtl_dim blockIdx, blockDim, gridDim, threadIdx;
// shared memory starts each block as garbage, as on a GPU: the first thread of a block to
// pass a __shared__ declaration fills the variable as ``poison`` fills arrays (NaN floats,
// the most negative signed int, the largest unsigned one), raw byte buffers with 0xFF
// (read as NaN floats), so a read before this block wrote the value cannot pass for the
// previous block's value
static unsigned minimtl_block_epoch = 0;
template <typename V> static void minimtl_poison(V& v) {
    using E = typename std::remove_all_extents<V>::type;
    E* p = reinterpret_cast<E*>(&v);
    const size_t n = sizeof(V) / sizeof(E);
    if constexpr (std::is_floating_point<E>::value) {
        for (size_t i = 0; i < n; ++i) p[i] = std::numeric_limits<E>::quiet_NaN();
    } else if constexpr (sizeof(E) == 1) {
        std::memset(p, 0xFF, sizeof(V));
    } else {
        const E v = std::is_signed<E>::value ? std::numeric_limits<E>::min()
                                             : std::numeric_limits<E>::max();
        for (size_t i = 0; i < n; ++i) p[i] = v;
    }
}
#define MINIMTL_POISON(var) do { static unsigned minimtl_seen = ~0u; \
    if (minimtl_seen != minimtl_block_epoch) { \
        minimtl_seen = minimtl_block_epoch; minimtl_poison(var); } } while (0)
// cooperative blocks: every CUDA thread is a fiber; __syncthreads() returns to the
// scheduler, which runs each fiber to its next barrier in turn
static ucontext_t minimtl_scheduler;
static ucontext_t* minimtl_current = nullptr;
static void __syncthreads() {
    if (minimtl_current) swapcontext(minimtl_current, &minimtl_scheduler);
}
static int __ffs(int v) { return __builtin_ffs(v); }
static float __int_as_float(int v) { float f; std::memcpy(&f, &v, sizeof f); return f; }
static double __longlong_as_double(long long v) {
    double f; std::memcpy(&f, &v, sizeof f); return f;
}
// a warp shuffle as two barrier rounds: every thread posts its value, then reads its
// partner's (lane ^ mask); the kernels' warps are whole, so every partner is live
template <typename T> static T* minimtl_exchange() { static T slots[1024]; return slots; }
template <typename T> static T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) {
    const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    T* slots = minimtl_exchange<T>();
    slots[tid] = v;
    __syncthreads();
    const T partner = slots[tid ^ (unsigned)lane_mask];
    __syncthreads();
    return partner;
}
// atomics: one thread runs at a time and switches only at barriers, so a plain
// read-modify-write is exact; fences have nothing to order
template <typename T> static T minimtl_rmw(T* a, T v, T (*op)(T, T)) {
    const T old = *a; *a = op(old, v); return old;
}
#define MINIMTL_ATOMIC(NAME, T, EXPR) \
    static T NAME(T* a, T v) { return minimtl_rmw<T>(a, v, [](T o, T v) -> T { return EXPR; }); }
MINIMTL_ATOMIC(atomicAdd, int, o + v)
MINIMTL_ATOMIC(atomicAdd, unsigned, o + v)
MINIMTL_ATOMIC(atomicAdd, unsigned long long, o + v)
MINIMTL_ATOMIC(atomicAdd, float, o + v)
MINIMTL_ATOMIC(atomicAdd, double, o + v)
MINIMTL_ATOMIC(atomicSub, int, o - v)
MINIMTL_ATOMIC(atomicSub, unsigned, o - v)
MINIMTL_ATOMIC(atomicExch, int, ((void)o, v))
MINIMTL_ATOMIC(atomicExch, unsigned, ((void)o, v))
MINIMTL_ATOMIC(atomicExch, unsigned long long, ((void)o, v))
MINIMTL_ATOMIC(atomicExch, float, ((void)o, v))
MINIMTL_ATOMIC(atomicMin, int, v < o ? v : o)
MINIMTL_ATOMIC(atomicMin, unsigned, v < o ? v : o)
MINIMTL_ATOMIC(atomicMax, int, v > o ? v : o)
MINIMTL_ATOMIC(atomicMax, unsigned, v > o ? v : o)
MINIMTL_ATOMIC(atomicInc, unsigned, o >= v ? 0u : o + 1u)
MINIMTL_ATOMIC(atomicDec, unsigned, (o == 0u || o > v) ? v : o - 1u)
#undef MINIMTL_ATOMIC
template <typename T> static T minimtl_cas(T* a, T compare, T v) {
    const T old = *a; if (old == compare) *a = v; return old;
}
static int atomicCAS(int* a, int c, int v) { return minimtl_cas(a, c, v); }
static unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return minimtl_cas(a, c, v); }
static unsigned long long atomicCAS(unsigned long long* a, unsigned long long c,
                                    unsigned long long v) { return minimtl_cas(a, c, v); }
static void __threadfence() {}
static void __threadfence_block() {}
static void __threadfence_system() {}
static float __fmul_rn(float a, float b) { return a * b; }
static double __dmul_rn(double a, double b) { return a * b; }
static float __fadd_rn(float a, float b) { return a + b; }
static double __dadd_rn(double a, double b) { return a + b; }
static float __fsub_rn(float a, float b) { return a - b; }
static double __dsub_rn(double a, double b) { return a - b; }
static float __fdiv_rn(float a, float b) { return a / b; }
static double __ddiv_rn(double a, double b) { return a / b; }
static float __fsqrt_rn(float a) { return std::sqrt(a); }
static double __dsqrt_rn(double a) { return std::sqrt(a); }
using std::exp; using std::log; using std::log1p; using std::fabs; using std::fmax;
using std::fmin; using std::tanh; using std::min; using std::max;

static std::function<void()>* minimtl_body = nullptr;
static bool* minimtl_done_flag = nullptr;
static void minimtl_fiber_main() {
    (*minimtl_body)();
    *minimtl_done_flag = true;
}

// An order of n items by code: 0 natural, 1 reversed, any other value a shuffle drawn
// from rng (seeded with the code).
static void minimtl_order(std::vector<size_t>& idx, unsigned code, std::mt19937& rng) {
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    if (code == 1) std::reverse(idx.begin(), idx.end());
    else if (code > 1) std::shuffle(idx.begin(), idx.end(), rng);
}

// Runs a launch of grid dims[0..2] x block dims[3..5], the blocks in turn (dims[6]: 0 in
// their natural order, x fastest; 1 in reverse; any other value, shuffled with it as the
// seed); in a block the threads one after another, or (together) as fibers that meet at
// every barrier, in the order dims[7] gives (coded as dims[6]; a shuffle is drawn afresh
// for every block and, for fibers, every round between two barriers).
template <typename F>
static void minimtl_run(const unsigned* dims, bool together, F kernel) {
    gridDim = {dims[0], dims[1], dims[2]};
    blockDim = {dims[3], dims[4], dims[5]};
    std::vector<minimtl_dim> ids;
    for (unsigned tz = 0; tz < dims[5]; ++tz)
    for (unsigned ty = 0; ty < dims[4]; ++ty)
    for (unsigned tx = 0; tx < dims[3]; ++tx) ids.push_back({tx, ty, tz});
    const size_t nt = ids.size(), stack = 1 << 15;
    std::vector<ucontext_t> fibers(together ? nt : 0);
    std::unique_ptr<char[]> stacks(together ? new char[nt * stack] : nullptr);
    std::function<void()> body = kernel;
    std::vector<minimtl_dim> order;
    for (unsigned bz = 0; bz < dims[2]; ++bz)
    for (unsigned by = 0; by < dims[1]; ++by)
    for (unsigned bx = 0; bx < dims[0]; ++bx) order.push_back({bx, by, bz});
    if (dims[6] == 1) std::reverse(order.begin(), order.end());
    else if (dims[6] > 1) std::shuffle(order.begin(), order.end(), std::mt19937(dims[6]));
    std::mt19937 thread_rng(dims[7]);
    std::vector<size_t> turn(nt);
    for (const minimtl_dim& block : order) {
        blockIdx = block;
        ++minimtl_block_epoch;
        if (!together) {
            minimtl_order(turn, dims[7], thread_rng);
            for (size_t i : turn) { threadIdx = ids[i]; kernel(); }
            continue;
        }
        std::vector<char> done(nt, 0);
        for (size_t i = 0; i < nt; ++i) {
            getcontext(&fibers[i]);
            fibers[i].uc_stack.ss_sp = &stacks[i * stack];
            fibers[i].uc_stack.ss_size = stack;
            fibers[i].uc_link = &minimtl_scheduler;
            makecontext(&fibers[i], minimtl_fiber_main, 0);
        }
        minimtl_body = &body;
        for (size_t left = nt; left > 0;) {      // one round: every fiber to its next barrier
            minimtl_order(turn, dims[7], thread_rng);
            for (size_t i : turn) {
                if (done[i]) continue;
                threadIdx = ids[i];
                minimtl_current = &fibers[i];
                bool finished = false;
                minimtl_done_flag = &finished;
                swapcontext(&minimtl_scheduler, &fibers[i]);
                if (finished) { done[i] = 1; --left; }
            }
        }
        minimtl_current = nullptr;
    }
}
"""

_CTYPES = {"float": "float", "double": "double"}
_KERNEL = re.compile(r"template\s*<typename T>\s*__global__\s+void\s+"
                     r"(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\((.*?)\)\s*\{", re.S)


#: the atomics of the prelude (device-wide forms only: no ``_block``/``_system`` suffix)
ATOMICS = ("atomicAdd", "atomicSub", "atomicExch", "atomicMin", "atomicMax", "atomicInc",
           "atomicDec", "atomicCAS")


def supports(source: str) -> bool:
    """True when the kernels of ``source`` can run here: of the atomics only ``ATOMICS``,
    and of the warp operations only ``__shfl_xor_sync``."""
    if any(name not in ATOMICS for name in re.findall(r"\b(atomic\w*)\s*\(", source)):
        return False
    return not re.search(r"__shfl_(?!xor_sync)|__ballot|__any_sync|__all_sync", source)


#: how ``HostKernel`` orders the blocks of a launch (see ``block_order``)
_block_order = 0


@contextlib.contextmanager
def block_order(order: str | int):
    """Run the blocks of every launch in the ``with`` body in another order: ``"forward"``
    (the natural order, x fastest, the default), ``"reverse"``, or a shuffle seeded with
    an int >= 2. A kernel's result must not depend on the order in which its blocks run
    or finish (a GPU promises none), so tests compare the bits of the orders."""
    global _block_order
    code = _order_code("block_order", order)
    saved, _block_order = _block_order, code
    try:
        yield
    finally:
        _block_order = saved


#: how ``HostKernel`` orders the threads of a block (see ``thread_order``)
_thread_order = 0


@contextlib.contextmanager
def thread_order(order: str | int):
    """Run the threads of every block in the ``with`` body in another order: ``"forward"``
    (threadIdx.x fastest, the default), ``"reverse"``, or shuffled with an int >= 2 as the
    seed, a fresh shuffle for each block and each round between two barriers. In one
    order a missing barrier goes unseen whenever the thread that writes shared memory runs
    before the one that reads it; the other orders put the reader first. A kernel's bits
    must not depend on the order of its threads, so tests compare the orders' bits."""
    global _thread_order
    code = _order_code("thread_order", order)
    saved, _thread_order = _thread_order, code
    try:
        yield
    finally:
        _thread_order = saved


def _order_code(name: str, order) -> int:
    code = {"forward": 0, "reverse": 1}.get(order, order)
    if not isinstance(code, int) or code < 0:
        raise ValueError(f"{name}: 'forward', 'reverse' or a seed >= 2, not {order!r}")
    return code


#: bytes behind each ``extern __shared__`` array (the largest opt-in block size of an H200
#: is 227 KiB; ``FakeCupy`` reports that limit to the wrappers)
DYNAMIC_SHARED = 232448


def _host_source(source: str) -> str:
    """``extern __shared__ T name[];`` (dynamic shared memory) as a static array, and
    every ``__shared__`` declaration followed by the poisoning of its variables
    (``MINIMTL_POISON``, once per block)."""
    def dynamic(m):
        return (f"{m.group(1) or ''}static {m.group(2)} {m.group(3)}[{DYNAMIC_SHARED}]; "
                f"MINIMTL_POISON({m.group(3)});")

    source = re.sub(r"extern\s+__shared__\s+(__align__\(\d+\)\s+)?([\w ]+?)\s+(\w+)\[\];",
                    dynamic, source)

    def static(m):
        names = [re.match(r"\s*(\w+)", d).group(1) for d in m.group(2).split(",")]
        return m.group(0) + " " + " ".join(f"MINIMTL_POISON({n});" for n in names)

    return re.sub(r"__shared__\s+(\w+(?: \w+)*?)\s+([^;()]+);", static, source)


def poison(a: np.ndarray) -> np.ndarray:
    """Fill ``a`` (fresh from ``empty``) with what no kernel would write: NaN for floats,
    the most negative value for signed ints, the largest for unsigned ones; returns it.
    On a GPU, as here, ``empty`` hands out old memory; NumPy's often holds the bits of an
    array just freed, so an output element a kernel forgot to write could read as right
    in a test that compares two runs of the same call."""
    kind = a.dtype.kind
    if kind in "fc":
        a.fill(np.nan)
    elif kind in "iu":
        a.fill(np.iinfo(a.dtype).min if kind == "i" else np.iinfo(a.dtype).max)
    return a


class FakeCupy:
    """NumPy under cupy's name (``empty`` and ``empty_like`` filled by ``poison``), plus
    the device queries the wrappers make."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, order="C"):
        return poison(np.empty(shape, dtype, order=order))

    @staticmethod
    def empty_like(a, dtype=None, order="K", shape=None):
        return poison(np.empty(a.shape if shape is None else shape,
                               a.dtype if dtype is None else dtype))

    class cuda:  # noqa: N801 - cupy's spelling
        class Device:
            def __init__(self, device_id: int = 0) -> None:
                self.id = device_id
                self.attributes = {"MaxSharedMemoryPerBlockOptin": DYNAMIC_SHARED}



def _cooperative(source: str) -> bool:
    return bool(re.search(r"__shared__|__syncthreads|__shfl", source))


def _params(text: str) -> list[tuple[str, str]]:
    """[(C type, name)] of a kernel's parameter list."""
    out = []
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)   # comments
    for part in text.split(","):
        part = " ".join(part.replace("__restrict__", "").split())
        ctype, name = part.rsplit(" ", 1)
        while name.startswith("*"):
            ctype, name = ctype + "*", name[1:]
        out.append((ctype.replace(" *", "*"), name))
    return out


def _ctype(ctype: str, t: str):
    if ctype.endswith("*"):
        return ctypes.c_void_p
    base = ctype.replace("const ", "").strip()
    return {"int": ctypes.c_int, "long long": ctypes.c_longlong, "float": ctypes.c_float,
            "double": ctypes.c_double, "T": ctypes.c_float if t == "float" else
            ctypes.c_double, "unsigned": ctypes.c_uint}[base]


def _sanitize_flags() -> list[str]:
    """``MINIMTL_CUDA_HOST_ASAN=1``: build the kernels with AddressSanitizer, so a read or
    write past an array (global or shared) stops the run with a report naming the kernel's
    line (tests/asan_check.sh runs the host kernel tests so)."""
    if os.environ.get("MINIMTL_CUDA_HOST_ASAN") != "1":
        return []
    return ["-g", "-fsanitize=address", "-fno-omit-frame-pointer"]


class HostModule:
    """The kernels of ``source`` compiled for the host (cached per source in ``cache``)."""

    def __init__(self, source: str, cache: Path) -> None:
        if shutil.which("g++") is None:
            raise RuntimeError("g++ is needed to run CUDA sources on the host")
        self.kernels = {name: _params(params) for name, params in _KERNEL.findall(source)}
        runners = []
        together = "true" if _cooperative(source) else "false"
        for name, params in self.kernels.items():
            for t in _CTYPES:
                decl = ", ".join(re.sub(r"\bT\b", t, c) + " " + n for c, n in params)
                args = ", ".join(n for _, n in params)
                runners.append(
                    f'extern "C" void run_{name}_{t}(const unsigned* minimtl_dims, {decl}) '
                    f"{{ minimtl_run(minimtl_dims, {together}, [=] {{ {name}<{t}>({args}); }}); }}")
        text = PRELUDE + _host_source(source) + "\n" + "\n".join(runners)
        flags = _sanitize_flags()
        digest = hashlib.sha1((text + " ".join(flags)).encode()).hexdigest()[:16]
        lib = cache / f"host_{digest}.so"
        if not lib.exists():       # compiled under a private name, then renamed: another
            cache.mkdir(parents=True, exist_ok=True)     # process never sees half a library
            tag = f"{digest}.{os.getpid()}"
            src, tmp = cache / f"host_{tag}.cpp", cache / f"host_{tag}.so.tmp"
            src.write_text(text)
            try:
                res = subprocess.run(["g++", "-std=c++17", "-O1", "-ffp-contract=off",
                                      "-shared", "-fPIC", "-Wno-unknown-pragmas", *flags,
                                      str(src), "-o", str(tmp)], capture_output=True,
                                     text=True, timeout=300)
                if res.returncode != 0:
                    raise RuntimeError(res.stderr[-3000:])
                os.replace(tmp, lib)
            finally:
                if flags:                # a sanitizer's report names lines of this file
                    src.replace(cache / f"host_{digest}.cpp")
                src.unlink(missing_ok=True)
                tmp.unlink(missing_ok=True)
        self.lib = ctypes.CDLL(str(lib))

    def function(self, name: str, dtype) -> HostKernel:
        t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]
        fn = getattr(self.lib, f"run_{name}_{t}")
        fn.argtypes = [ctypes.c_void_p] + [_ctype(c, t) for c, _ in self.kernels[name]]
        fn.restype = None
        return HostKernel(fn, self.kernels[name], f"{name}<{t}>")


class HostKernel:
    """Called like a ``cupy.RawKernel``: ``fn(grid, block, args, shared_mem=0)``; ``name``
    is the instance's name expression (``conv1d_fwd<float>``)."""

    def __init__(self, fn, params, name: str = "") -> None:
        self.fn, self.params, self.name = fn, params, name

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        if len(args) != len(self.params):
            raise TypeError(f"kernel takes {len(self.params)} arguments, got {len(args)}")
        conv = []
        for (ctype, name), a in zip(self.params, args):
            if ctype.endswith("*"):
                if not (isinstance(a, np.ndarray) and a.flags.c_contiguous):
                    raise TypeError(f"argument {name}: a C-contiguous array is needed")
                conv.append(a.ctypes.data)
            else:
                conv.append(a.item() if hasattr(a, "item") else a)
        g = tuple(int(v) for v in grid) + (1,) * (3 - len(grid))
        b = tuple(int(v) for v in block) + (1,) * (3 - len(block))
        dims = np.array(g + b + (_block_order, _thread_order), dtype=np.uint32)
        from tests import cuda_host_graphs as graphs

        if graphs.capturing is None:
            self.fn(dims.ctypes.data, *conv)
            return
        # captured: not run now (a kernel may write through a table of addresses, which
        # no argument shows), replayed with these very pointers and scalars (``args``
        # keeps the arrays alive); its outputs made during the capture read as zeros
        for (ctype, _), a in zip(self.params, args):
            if ctype.endswith("*") and not ctype.startswith("const") and \
                    not graphs.writes_old_memory(a):
                a.view(np.ndarray).fill(0)

        def run(args=args):
            self.fn(dims.ctypes.data, *conv)

        graphs.record(run)


def patch_module(monkeypatch, module, cache: Path, fake=None) -> None:
    """Make ``module`` (a ``kernels/<op>/cupy_cuda.py`` or similar) run on the host: its
    ``cupy()`` returns NumPy (``fake``, a ``FakeCupy`` unless given) and its ``kernel(...)``
    returns host-compiled kernels."""
    built: dict[str, HostModule] = {}

    def kernel(source, names, name, dtype):
        if source not in built:
            built[source] = HostModule(source, cache)
        return built[source].function(name, dtype)

    fake = FakeCupy() if fake is None else fake
    for attr, value in (("cupy", lambda: fake), ("kernel", kernel)):
        if hasattr(module, attr):      # a module that only reuses another's wrappers has none
            monkeypatch.setattr(module, attr, value)


def default_cache() -> Path:
    """Where host builds of the CUDA sources are kept between runs: ``MINIMTL_CUDA_HOST_CACHE``
    or ``build/cuda_host`` in the repository. A build is named after the hash of its whole
    text, so a changed source is never served an old build."""
    env = os.environ.get("MINIMTL_CUDA_HOST_CACHE")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "build" / "cuda_host"


def _host_rows_per_block(N: int) -> int:
    """Rows per block for the recurrences on the host: 1, 2 or 4 rows from N = 1, 2, 4 on
    (the GPU's thresholds are 512 and 1024), so the small batches of the tests cross every
    rows-per-block path, partial last blocks included (N = 3: a block of 2 and one of 1)."""
    return 1 if N < 2 else (2 if N < 4 else 4)


def lower_thresholds(monkeypatch) -> None:
    """Launch thresholds sized for a GPU, lowered so that test-sized inputs take each path:
    the recurrences' rows per block, and the conv weight gradient's block target (about
    1,024 blocks on a GPU; on the host a few, still more than one, so its reduction is split
    across blocks)."""
    import importlib

    monkeypatch.setattr(importlib.import_module("kernels._recurrent_cuda"), "_rows_per_block",
                        _host_rows_per_block)
    monkeypatch.setattr(importlib.import_module("kernels.conv1d.cupy_cuda"), "_TARGET_BLOCKS",
                        8)


#: The CUDA-side modules that several families share; their ``cupy()`` and ``kernel(...)``
#: are patched like a family's.
SHARED_CUDA = ("kernels._rows_cuda", "kernels._recurrent_cuda")


def patch_kernels(monkeypatch, cache: Path | None = None) -> None:
    """Every ``kernels/<family>/cupy_cuda`` module (Adam's included) on the host, with the
    thresholds lowered (``lower_thresholds``): ``kernels.get(op, "cupy")`` then runs the CUDA
    sources on NumPy arrays. Only the kernel modules change, not minimtl's backends."""
    import importlib

    import kernels

    cache = default_cache() if cache is None else cache
    for op in kernels.FAMILIES:
        patch_module(monkeypatch, importlib.import_module(f"kernels.{op}.cupy_cuda"), cache)
    for name in SHARED_CUDA:
        patch_module(monkeypatch, importlib.import_module(name), cache)
    lower_thresholds(monkeypatch)


def patch_cupy_backend(monkeypatch, cache: Path, count_launches: bool = False) -> None:
    """The whole ``cupy`` backend on the host: tensors hold NumPy arrays, every
    ``cupy_cuda`` module (and the Adam kernel) runs through ``patch_module``. For the
    model-level paths that only the cupy backend takes (layouts, Adam's kernel).

    ``count_launches``: the arrays are ``DeviceArray``s (tests/cuda_host_launches.py), so
    that an open ``kernels.launches.count()`` sees cupy's own kernels (element-wise ops,
    reductions, copies) besides ours; the values are the same."""
    import importlib

    import kernels
    import minimtl.backend as backend
    from minimtl.tensor import Tensor

    fake = FakeCupy()
    device_to_host = np.asarray
    if count_launches:
        from tests.cuda_host_graphs import install
        from tests.cuda_host_launches import CountingFakeCupy
        from tests.cuda_host_launches import to_host as device_to_host

        fake = CountingFakeCupy(fake)
        install(monkeypatch, fake)

    def to_host(self):
        return device_to_host(self.data)

    real_xp_of = backend.xp_of

    def xp_of(name):
        return fake if name == "cupy" else real_xp_of(name)

    monkeypatch.setitem(backend._available, "cupy", True)
    for name in ("minimtl.optim", "minimtl.train", "minimtl.gradcheck", "minimtl.nn"):
        importlib.import_module(name)
    # every module that took ``xp_of`` from the backend module
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "minimtl" and getattr(module, "xp_of", None) is real_xp_of:
            monkeypatch.setattr(module, "xp_of", xp_of)
    monkeypatch.setattr(Tensor, "numpy", to_host)
    for op in kernels.FAMILIES:
        patch_module(monkeypatch, importlib.import_module(f"kernels.{op}.cupy_cuda"), cache,
                     fake)
    for name in SHARED_CUDA:
        patch_module(monkeypatch, importlib.import_module(name), cache, fake)
