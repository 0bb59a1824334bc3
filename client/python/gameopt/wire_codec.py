"""Compressed tensors on the wire: BFLOAT16, FLOAT16 and INT8_BLOCK.

The formats of proto/gameopt/v1/gameopt.proto (enum DType) and
server/core/wire_codec.h, in numpy: every conversion is a handful of
vectorized operations on the whole tensor, no Python loop per value.
Round-to-nearest-even writes the same bytes as the C++ codec (and the Node
one); stochastic rounding draws its bits from a numpy Generator, so its
bytes differ but not its expectation: E[decoded] = the float32 value.

Values are first rounded to float32 (a float64 to the nearest float32).
encode() returns None when a finite value does not fit the format
(FLOAT16 past 65504): send that tensor as FLOAT32 instead.
"""

from typing import Optional

import numpy as np

from gameopt._stubs import pb

BLOCK = 256  # INT8_BLOCK values per float32 scale
COMPRESSED = (pb.BFLOAT16, pb.FLOAT16, pb.INT8_BLOCK)
_F32_EXP = np.uint32(0x7F800000)


def nbytes(dtype: int, n: int) -> int:
    """Bytes of n values in the compressed `dtype`."""
    if dtype == pb.INT8_BLOCK:
        return n + 4 * ((n + BLOCK - 1) // BLOCK)
    return 2 * n


def _random(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 32, size=n, dtype=np.uint32)


def _bf16(u: np.ndarray, r: Optional[np.ndarray]) -> np.ndarray:
    if r is None:
        rounded = (u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16
    else:
        rounded = (u + (r >> 16)) >> 16
    nan = (u & np.uint32(0x7FFFFFFF)) > _F32_EXP
    return np.where(nan, (u >> 16) | np.uint32(0x40), rounded).astype("<u2")


def _f16_stochastic(u: np.ndarray, r: np.ndarray) -> np.ndarray:
    sign = (u >> 16) & np.uint32(0x8000)
    x = u & np.uint32(0x7FFFFFFF)
    normal = np.minimum((x - np.uint32(112 << 23) + (r & np.uint32(0x1FFF)))
                        >> 13, np.uint32(0x7C00))
    e = (x >> 23).astype(np.int64)
    s = 126 - e
    m = ((x & np.uint32(0x7FFFFF)) | np.uint32(0x800000)).astype(np.uint64)
    shift = np.clip(s, 0, 32).astype(np.uint64)
    sub = (m + (r.astype(np.uint64) >> (np.uint64(32) - shift))) >> shift
    sub = np.where((e == 0) | (s > 32), 0, sub).astype(np.uint32)
    special = np.where(x > _F32_EXP, np.uint32(0x7E00), np.uint32(0x7C00))
    o = np.where(x >= _F32_EXP, special,
                 np.where(x >= np.uint32(0x38800000), normal, sub))
    return (o | sign).astype("<u2")


def _int8(v: np.ndarray, r: Optional[np.ndarray]) -> bytes:
    n = v.size
    blocks = (n + BLOCK - 1) // BLOCK
    padded = np.zeros(blocks * BLOCK, dtype=np.float32)
    padded[:n] = v
    rows = padded.reshape(blocks, BLOCK)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        amax = np.abs(rows).max(axis=1)
        scale = (amax / np.float32(127)).astype(np.float32)
        scale[~np.isfinite(rows).all(axis=1)] = np.float32("nan")
        live = scale > 0
        divisor = np.where(live, scale, np.float32(1))
        q = np.where(live[:, None], rows / divisor[:, None],
                     np.float32(0)).astype(np.float32)
        nearest = np.rint(q)
        if r is None:
            rounded = nearest
        else:
            floor = np.where(nearest > q, nearest - 1, nearest)
            padded_r = np.zeros(blocks * BLOCK, dtype=np.uint32)
            padded_r[:n] = r
            u = (padded_r.reshape(blocks, BLOCK) >> 8).astype(np.float32) \
                * np.float32(1.0 / 16777216.0)
            rounded = np.where(u < q - floor, floor + 1, floor)
        q8 = np.clip(np.nan_to_num(rounded), -127, 127).astype(np.int8)
    out = np.empty((blocks, 4 + BLOCK), dtype=np.uint8)
    out[:, :4] = scale.astype("<f4").view(np.uint8).reshape(blocks, 4)
    out[:, 4:] = q8.view(np.uint8)
    return out.reshape(-1)[:nbytes(pb.INT8_BLOCK, n)].tobytes()


def encode(values: np.ndarray, dtype: int,
           rng: Optional[np.random.Generator] = None) -> Optional[bytes]:
    """`values` (any float array, flattened) in the compressed `dtype`:
    nearest-even, or stochastic with bits from `rng` when given. None when a
    finite value does not fit the format."""
    v = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    u = v.view(np.uint32)
    r = None if rng is None else _random(rng, v.size)
    if dtype == pb.INT8_BLOCK:
        return _int8(v, r)
    if dtype == pb.BFLOAT16:
        o = _bf16(u, r)
        inf = np.uint16(0x7F80)
    elif dtype == pb.FLOAT16:
        if r is None:
            with np.errstate(over="ignore"):
                o = v.astype("<f2").view("<u2")  # IEEE nearest-even
        else:
            o = _f16_stochastic(u, r)
        inf = np.uint16(0x7C00)
    else:
        raise ValueError(f"dtype {dtype} is not a compressed wire dtype")
    overflow = ((o & inf) == inf) & ((u & _F32_EXP) != _F32_EXP)
    if overflow.any():
        return None
    return o.tobytes()


def decode(data: bytes, dtype: int, n: int) -> np.ndarray:
    """n float32 values from `data` in the compressed `dtype`."""
    if len(data) != nbytes(dtype, n):
        raise ValueError(f"{len(data)} bytes do not hold {n} values of "
                         f"{pb.DType.Name(dtype)} ({nbytes(dtype, n)} do)")
    if dtype == pb.BFLOAT16:
        h = np.frombuffer(data, dtype="<u2").astype(np.uint32)
        return (h << 16).view(np.float32)
    if dtype == pb.FLOAT16:
        return np.frombuffer(data, dtype="<f2").astype(np.float32)
    if dtype == pb.INT8_BLOCK:
        blocks = (n + BLOCK - 1) // BLOCK
        raw = np.zeros(blocks * (4 + BLOCK), dtype=np.uint8)
        raw[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        rows = raw.reshape(blocks, 4 + BLOCK)
        scale = np.ascontiguousarray(rows[:, :4]).view("<f4").reshape(blocks)
        q = np.ascontiguousarray(rows[:, 4:]).view(np.int8)
        with np.errstate(invalid="ignore", over="ignore"):
            out = q.astype(np.float32) * scale[:, None]
        return out.reshape(-1)[:n]
    raise ValueError(f"dtype {dtype} is not a compressed wire dtype")
