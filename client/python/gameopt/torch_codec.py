"""PyTorch tensors to and from the wire's Vector messages, one copy each way.

Decoding views the message's bytes with torch.frombuffer (no copy) and
copies them once into the parameters (dtype and device converted by that
copy), or, for probes, converts them once to the parameters' dtype and
device (no copy at all on CPU when the dtypes agree). Encoding converts a
tensor to the session's wire dtype on the CPU (no copy when it is already
there) and writes its bytes once (numpy's tobytes). No float64 detour.
"""

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from gameopt import wire_codec
from gameopt._stubs import pb
from gameopt.tensors import LayoutError

# torch.frombuffer warns that message bytes are not writable: we only read
# them (copy_ into parameters, or products' inputs). A catch_warnings block
# per tensor would cost more than the copy for small tensors.
warnings.filterwarnings("ignore", message="The given buffer is not writable",
                        category=UserWarning, module=r"gameopt\.torch_codec")

WIRE_TORCH = {pb.FLOAT32: torch.float32, pb.FLOAT64: torch.float64}
_DTYPE_NAME = {pb.FLOAT32: "float32", pb.FLOAT64: "float64"}
_ITEMSIZE = {pb.FLOAT32: 4, pb.FLOAT64: 8}


def _view(tensor: "pb.Tensor", player: str, expected: torch.Size
          ) -> torch.Tensor:
    """The wire tensor's values as a read-only CPU tensor of `expected`
    shape (a view of the message's bytes); LayoutError naming both shapes."""
    if tensor.dtype in wire_codec.COMPRESSED:
        sent = tuple(tensor.shape)
        numel = expected.numel()
        if (sent and sent != tuple(expected)) or \
                len(tensor.data) != wire_codec.nbytes(tensor.dtype, numel):
            raise LayoutError(
                f"tensor '{player}/{tensor.name}': the server's is {sent} "
                f"{pb.DType.Name(tensor.dtype)} in {len(tensor.data)} bytes, "
                f"the model's parameter is {tuple(expected)}")
        return torch.from_numpy(wire_codec.decode(
            tensor.data, tensor.dtype, numel)).view(expected)
    dtype = WIRE_TORCH.get(tensor.dtype)
    if dtype is None:
        raise LayoutError(f"tensor '{player}/{tensor.name}': unsupported "
                          f"dtype {tensor.dtype}")
    sent = tuple(tensor.shape)
    numel = expected.numel()
    itemsize = _ITEMSIZE[tensor.dtype]
    if (sent and sent != tuple(expected)) or \
            len(tensor.data) != numel * itemsize:
        got = sent if sent else f"{len(tensor.data) // itemsize} values"
        raise LayoutError(
            f"tensor '{player}/{tensor.name}': the server's is {got} "
            f"{_DTYPE_NAME[tensor.dtype]}, the model's parameter is "
            f"{tuple(expected)}")
    if numel == 0:
        return torch.zeros(expected, dtype=dtype)
    return torch.frombuffer(tensor.data, dtype=dtype).view(expected)


class TensorTable:
    """The players' parameters by (player, tensor name), in wire order."""

    def __init__(self, players: Sequence[Tuple[str, Sequence[str],
                                               Sequence[torch.Tensor]]]):
        self.players = [(name, list(names), list(params))
                        for name, names, params in players]
        self._index: Dict[Tuple[str, str], torch.Tensor] = {}
        self.flat: List[torch.Tensor] = []
        for name, names, params in self.players:
            for tensor_name, p in zip(names, params):
                self._index[(name, tensor_name)] = p
                self.flat.append(p)

    def _find(self, player: str, tensor: str) -> torch.Tensor:
        p = self._index.get((player, tensor))
        if p is None:
            known = [f"{a}/{b}" for a, b in self._index]
            raise LayoutError(f"the server sent tensor '{player}/{tensor}', "
                              f"which the model does not have (model: "
                              f"{', '.join(known[:8])}"
                              f"{', ...' if len(known) > 8 else ''})")
        return p

    def load(self, vector: "pb.Vector") -> None:
        """Copies the vector's tensors into the parameters (in place)."""
        with torch.no_grad():
            for player in vector.players:
                for tensor in player.tensors:
                    p = self._find(player.player, tensor.name)
                    p.copy_(_view(tensor, player.player, p.shape))

    def decode(self, vector: "pb.Vector") -> List[Optional[torch.Tensor]]:
        """One tensor per parameter (flat order) in the parameter's dtype
        and device; None where the vector has none."""
        by_param = {}
        for player in vector.players:
            for tensor in player.tensors:
                p = self._find(player.player, tensor.name)
                by_param[id(p)] = _view(tensor, player.player, p.shape).to(
                    device=p.device, dtype=p.dtype)
        return [by_param.get(id(p)) for p in self.flat]

    def encode(self, values: Sequence[Optional[torch.Tensor]], dtype: int,
               players: Optional[Sequence[str]] = None,
               rng=None) -> "pb.Vector":
        """A Vector of `players` (all when None) from one tensor (or None =
        zeros) per parameter in flat order, in wire dtype `dtype` (a
        compressed one: gameopt.wire_codec, stochastic with `rng`)."""
        wanted = set(players) if players else None
        vector = pb.Vector()
        i = 0
        for name, names, params in self.players:
            if wanted is not None and name not in wanted:
                i += len(params)
                continue
            out = vector.players.add(player=name)
            for tensor_name, p in zip(names, params):
                sent, data = self._tensor_bytes(values[i], p, dtype, rng)
                i += 1
                out.tensors.add(name=tensor_name, dtype=sent,
                                shape=tuple(p.shape), data=data)
        return vector

    @staticmethod
    def _tensor_bytes(value, p, dtype: int, rng):
        """(the dtype sent, the bytes) of one tensor (None = zeros shaped
        like parameter p) in wire dtype `dtype`."""
        if dtype not in wire_codec.COMPRESSED:
            if value is None:
                return dtype, bytes(p.numel() * _ITEMSIZE[dtype])
            return dtype, value.detach().to(
                device="cpu", dtype=WIRE_TORCH[dtype]).contiguous().numpy() \
                .tobytes()
        array = (torch.zeros(p.numel()) if value is None
                 else value.detach().to(device="cpu", dtype=torch.float32))
        data = wire_codec.encode(array.numpy(), dtype, rng)
        if data is None:  # past the format's range: float32
            return pb.FLOAT32, array.contiguous().numpy().tobytes()
        return dtype, data
