"""Between flat float64 numpy vectors and the wire's Vector messages.

The layout is the server's (proto/gameopt/v1/gameopt.proto, "Conventions"):
player by player in the session's order, inside a player tensor by tensor in
declaration order, each tensor row-major. Mirrors client/worker/tensor_codec.h.
Tensor bytes are read with numpy.frombuffer and written with ndarray.tobytes:
no per-element loop.
"""

import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from gameopt import wire_codec
from gameopt._stubs import pb

_WIRE = {pb.FLOAT64: np.dtype("<f8"), pb.FLOAT32: np.dtype("<f4")}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: Tuple[int, ...] = ()  # row-major; () is a scalar

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class PlayerSpec:
    name: str
    tensors: Tuple[TensorSpec, ...]

    def __init__(self, name: str, tensors: Iterable):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "tensors", tuple(
            t if isinstance(t, TensorSpec) else TensorSpec(t[0], tuple(t[1]))
            for t in tensors))

    @property
    def size(self) -> int:
        return sum(t.size for t in self.tensors)


class LayoutError(ValueError):
    """A Vector does not fit the layout (unknown tensor, wrong size)."""


class FlatLayout:
    """Where each (player, tensor) lives in the flat vector."""

    def __init__(self, players: Sequence[PlayerSpec]):
        self.players: List[PlayerSpec] = list(players)
        self._tensors: Dict[Tuple[str, str], Tuple[int, TensorSpec]] = {}
        self._players: Dict[str, Tuple[int, int]] = {}
        offset = 0
        for player in self.players:
            start = offset
            for tensor in player.tensors:
                self._tensors[(player.name, tensor.name)] = (offset, tensor)
                offset += tensor.size
            self._players[player.name] = (start, offset)
        self.dimension = offset

    def player_slice(self, player: str) -> slice:
        start, stop = self._players[player]
        return slice(start, stop)

    def tensor_slice(self, player: str, tensor: str) -> slice:
        offset, spec = self._tensors[(player, tensor)]
        return slice(offset, offset + spec.size)

    def tensor_spec(self, player: str, tensor: str) -> TensorSpec:
        return self._tensors[(player, tensor)][1]

    def split(self, values: np.ndarray) -> Dict[str, Dict[str, np.ndarray]]:
        """player -> tensor -> array of the tensor's shape (views)."""
        return {p.name: {t.name: values[self.tensor_slice(p.name, t.name)]
                         .reshape(t.shape) for t in p.tensors}
                for p in self.players}

    def join(self, values: Mapping[str, object]) -> np.ndarray:
        """Flat float64 vector from player -> (tensor -> array, or a list of
        arrays in declaration order). Missing players or tensors are zeros."""
        out = np.zeros(self.dimension)
        for player in self.players:
            given = values.get(player.name)
            if given is None:
                continue
            for i, tensor in enumerate(player.tensors):
                value = (given.get(tensor.name) if isinstance(given, Mapping)
                         else given[i])
                if value is None:
                    continue
                value = np.asarray(value, dtype=np.float64)
                if value.size != tensor.size:
                    raise LayoutError(
                        f"tensor '{player.name}/{tensor.name}' needs "
                        f"{tensor.size} values, got {value.size}")
                out[self.tensor_slice(player.name, tensor.name)] = \
                    value.reshape(-1)
        return out


def encode_vector(values: np.ndarray, layout: FlatLayout,
                  players: Optional[Iterable[str]] = None,
                  dtype: int = pb.FLOAT64,
                  rng: Optional[np.random.Generator] = None) -> "pb.Vector":
    """The blocks of `players` (all when None or empty) of `values` as a
    Vector of `dtype`: pb.FLOAT64, pb.FLOAT32, or a compressed wire dtype
    (pb.BFLOAT16, pb.FLOAT16, pb.INT8_BLOCK; gameopt.wire_codec), rounded to
    nearest-even, or stochastically with bits from `rng` when given. A
    tensor a compressed dtype cannot hold (FLOAT16 past 65504) is sent as
    FLOAT32."""
    wanted = set(players) if players else None
    vector = pb.Vector()
    for spec in layout.players:
        if wanted is not None and spec.name not in wanted:
            continue
        player = vector.players.add(player=spec.name)
        for tensor_spec in spec.tensors:
            block = values[layout.tensor_slice(spec.name, tensor_spec.name)]
            data, sent = None, dtype
            if dtype in wire_codec.COMPRESSED:
                data = wire_codec.encode(block, dtype, rng)
                if data is None:
                    sent = pb.FLOAT32
            if data is None:
                data = np.ascontiguousarray(block,
                                            dtype=_WIRE[sent]).tobytes()
            player.tensors.add(
                name=tensor_spec.name, dtype=sent, shape=tensor_spec.shape,
                data=data)
    return vector


def decode_vector(vector: "pb.Vector", layout: FlatLayout,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """Writes the tensors present in `vector` into `out` (a new zero vector
    when None) and returns it; absent coordinates are left as they were.
    LayoutError on unknown names or sizes."""
    if out is None:
        out = np.zeros(layout.dimension)
    for player in vector.players:
        for tensor in player.tensors:
            try:
                where = layout.tensor_slice(player.player, tensor.name)
            except KeyError:
                raise LayoutError(f"the server sent unknown tensor "
                                  f"'{player.player}/{tensor.name}'") from None
            n = where.stop - where.start
            expected = layout.tensor_spec(player.player, tensor.name).shape
            sent = tuple(tensor.shape)
            if tensor.dtype in wire_codec.COMPRESSED:
                if len(tensor.data) != wire_codec.nbytes(tensor.dtype, n) or (
                        sent and sent != expected):
                    raise LayoutError(
                        f"tensor '{player.player}/{tensor.name}': the "
                        f"server's is {sent} of "
                        f"{pb.DType.Name(tensor.dtype)} in "
                        f"{len(tensor.data)} bytes, the game's {expected}")
                out[where] = wire_codec.decode(tensor.data, tensor.dtype, n)
                continue
            wire = _WIRE.get(tensor.dtype, _WIRE[pb.FLOAT32])
            if len(tensor.data) != n * wire.itemsize or (
                    sent and sent != expected):
                got = sent or f"{len(tensor.data) // wire.itemsize} values"
                raise LayoutError(
                    f"tensor '{player.player}/{tensor.name}': the server's "
                    f"is {got} {wire.name}, the game's {expected}")
            out[where] = np.frombuffer(tensor.data, dtype=wire)
    return out


def vector_dtype(vector: "pb.Vector", default: int = pb.FLOAT32) -> int:
    """The dtype of the first tensor of `vector`, or `default`."""
    for player in vector.players:
        for tensor in player.tensors:
            return tensor.dtype
    return default
