"""tune_malloc(): glibc malloc settings for a worker process that sends
and receives large messages (the Python side of
server/service/malloc_tuning.h, which gameopt_server applies by default).

Every step a worker builds a request of the model's size (a bytes object
that gRPC's Python API needs) and receives one back. With glibc's
defaults, freed memory at the top of the heap is returned to the kernel
past 128 KiB and blocks from 128 KiB up (adjusting to at most 32 MiB) are
mmap'ed, so each step's messages fault in fresh zeroed pages: measured on
a GameOptimizer SimGD step of a 4M-parameter model (16 MB messages),
serializing the request took 16.8 ms instead of 5.0 and the whole call 68
ms instead of 46 (tests/bench/README.md).

tune_malloc() keeps freed memory for reuse and serves every allocation
from the heap. The price is the one torch's CUDA caching allocator also
pays: the process keeps its peak heap, which the next step reaches again
anyway. It changes the whole process, so it is the application's choice:
call it once, early (the examples and the torchrun script do). A no-op
returning False where the C library is not glibc.
"""

import ctypes
import ctypes.util

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_TRIM_THRESHOLD = 0x7FFFFFFF  # the largest value mallopt takes


def tune_malloc() -> bool:
    """Keep freed memory for reuse (trim threshold 2 GiB - 1) and serve
    large blocks from the heap instead of mmap (no page faults for each
    step's messages). True when glibc accepted both settings."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)) and \
        bool(mallopt(_M_MMAP_MAX, 0))
