"""The hot path's wire bytes, written and read by hand (GameOptimizer).

A session's tensor layout (players, tensor names, shapes, wire dtype) is
fixed, so the bytes of a Vector message differ from step to step only in
the tensors' data. `VectorTemplate` writes those bytes once (exactly as
protobuf serializes a Vector: fields in number order, proto3 defaults
left out) and keeps a numpy view of each tensor's data in them; encoding
a step's tensors is one numpy copy per tensor into the template. The
submissions (`RawGradientRequest`, `RawProductsRequest`) are the header
fields plus those Vector bytes under their field tags; TaskLink sends them
through the same gRPC methods with a serializer that writes the bytes
(the server parses them as any other client's; tests/python/test_wire.py
checks they equal protobuf's own serialization).

On the way back, `ParamsReader.find` locates the Task's params in the
TaskResponse bytes (a scan of the Task's top-level fields) and checks
that every byte outside the data equals the template's: then each
tensor's data is copied straight from the response bytes into the
parameters. Anything else (another layout, dtype, or encoding) returns
None and the caller decodes the parsed message as before.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

from gameopt import wire_codec
from gameopt._stubs import pb

_NP = {pb.FLOAT32: np.dtype("<f4"), pb.FLOAT64: np.dtype("<f8")}
_MASK64 = (1 << 64) - 1

# Wire types, and the field numbers from the generated classes (their
# *_FIELD_NUMBER constants), so the bytes cannot drift from gameopt.proto.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_VECTOR_PLAYERS = pb.Vector.PLAYERS_FIELD_NUMBER
_PLAYER_NAME = pb.PlayerTensors.PLAYER_FIELD_NUMBER
_PLAYER_TENSORS = pb.PlayerTensors.TENSORS_FIELD_NUMBER
_TENSOR_NAME = pb.Tensor.NAME_FIELD_NUMBER
_TENSOR_DTYPE = pb.Tensor.DTYPE_FIELD_NUMBER
_TENSOR_SHAPE = pb.Tensor.SHAPE_FIELD_NUMBER
_TENSOR_DATA = pb.Tensor.DATA_FIELD_NUMBER
_SCALAR_NAME = pb.Scalar.NAME_FIELD_NUMBER
_SCALAR_VALUE = pb.Scalar.VALUE_FIELD_NUMBER
_RESPONSE_TASK = pb.TaskResponse.TASK_FIELD_NUMBER
_TASK_PARAMS = pb.Task.PARAMS_FIELD_NUMBER
_GRADIENT = pb.SubmitGradientRequest
_PRODUCTS = pb.SubmitJacobianProductsRequest


def varint(value: int) -> bytes:
    """Protobuf varint of an int64/uint64 (negative: two's complement)."""
    value &= _MASK64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _tag(number, _LENGTH_DELIMITED) + varint(len(payload)) + payload


class Pieces(list):
    """Bytes-like pieces of one serialized message, `nbytes` in all, to be
    joined into a request (VectorTemplate.pieces)."""

    def __init__(self, nbytes: int):
        super().__init__()
        self.nbytes = nbytes


def _fields(number: int, payloads) -> List:
    """Repeated length-delimited fields as [header, payload, ...] for one
    b"".join (a large payload is copied once, into the joined bytes); a
    payload is bytes-like or Pieces."""
    parts: List = []
    for payload in payloads:
        pieces = isinstance(payload, Pieces)
        size = payload.nbytes if pieces else len(payload)
        parts.append(_tag(number, _LENGTH_DELIMITED) + varint(size))
        parts += payload if pieces else [payload]
    return parts


def _int_field(number: int, value: int) -> bytes:
    return b"" if value == 0 else _tag(number, _VARINT) + varint(value)


_SCALAR_VALUE_TAG = _tag(_SCALAR_VALUE, _FIXED64)


def _read_varint(data, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


# Layout: [(player, [(tensor name, shape), ...]), ...] in wire order.
Layout = Sequence[Tuple[str, Sequence[Tuple[str, Tuple[int, ...]]]]]


class VectorTemplate:
    """The bytes of a Vector over `layout`'s players in wire dtype `dtype`,
    with writable numpy views (`data[i]`, flat, wire dtype) of each
    tensor's values in them. A compressed dtype (gameopt.wire_codec) has
    byte views instead, filled by its encoder (stochastic with `rng`).
    Not thread-safe: one encode at a time."""

    def __init__(self, layout: Layout, dtype: int, rng=None):
        self.wire_dtype = dtype
        self.rng = rng
        compressed = dtype in wire_codec.COMPRESSED
        np_dtype = np.dtype(np.uint8) if compressed else _NP[dtype]
        size = ((lambda count: wire_codec.nbytes(dtype, count)) if compressed
                else (lambda count: count * np_dtype.itemsize))
        chunks: List[bytes] = []  # alternating header, data placeholders
        spans: List[Tuple[int, int]] = []  # (offset, count) per tensor
        players = []
        for player, tensors in layout:
            parts = [_field(_PLAYER_NAME, player.encode())]
            for name, shape in tensors:
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                head = _field(_TENSOR_NAME, name.encode()) + \
                    _int_field(_TENSOR_DTYPE, dtype)
                if shape:
                    head += _field(_TENSOR_SHAPE,
                                   b"".join(varint(d) for d in shape))
                nbytes = size(count)
                head += _tag(_TENSOR_DATA, _LENGTH_DELIMITED) + varint(nbytes)
                tensor_len = len(head) + nbytes
                parts.append((_tag(_PLAYER_TENSORS, _LENGTH_DELIMITED) +
                              varint(tensor_len), head, count, nbytes))
            players.append(parts)
        # Lay the bytes out, computing every length prefix.
        out = bytearray()
        for parts in players:
            body_len = len(parts[0]) + sum(len(t) + len(h) + n
                                           for t, h, _, n in parts[1:])
            out += _tag(_VECTOR_PLAYERS, _LENGTH_DELIMITED) + \
                varint(body_len) + parts[0]
            for tag, head, count, nbytes in parts[1:]:
                out += tag + head
                spans.append((len(out), count, nbytes))
                out += bytes(nbytes)
        self.buffer = out
        self.dtype = np_dtype
        self.spans = [(offset, count) for offset, count, _ in spans]
        # The header bytes between data regions: what find() checks.
        self.gaps: List[Tuple[int, int]] = []
        start = 0
        for offset, count, nbytes in spans:
            self.gaps.append((start, offset))
            start = offset + nbytes
        self.tail = (start, len(out))
        self.data = [np.frombuffer(out, dtype=np_dtype,
                                   count=nbytes // np_dtype.itemsize,
                                   offset=offset)
                     for offset, count, nbytes in spans]
        # The same header bytes, for pieces().
        self._gap_bytes = [bytes(out[a:b]) for a, b in self.gaps]
        self._tail_bytes = bytes(out[self.tail[0]:self.tail[1]])

    def __len__(self) -> int:
        return len(self.buffer)

    def fill(self, arrays: Sequence[Optional[np.ndarray]]) -> bytes:
        """The Vector's bytes with tensor i's values from arrays[i] (any
        shape of the right size, converted to the wire dtype; None: zeros),
        as a bytes object of their own."""
        return bytes(self.write(arrays))

    def write(self, arrays: Sequence[Optional[np.ndarray]]) -> memoryview:
        """fill() without the copy: writes the values into the template and
        returns a view of its bytes, valid until the next write() (a
        request that holds it may be serialized again, e.g. retried, until
        then)."""
        compressed = self.wire_dtype in wire_codec.COMPRESSED
        for view, array in zip(self.data, arrays):
            if array is None:
                view.fill(0)
            elif compressed:
                data = wire_codec.encode(array, self.wire_dtype, self.rng)
                if data is None:
                    raise OverflowError(
                        f"a value does not fit the session's wire dtype "
                        f"{pb.DType.Name(self.wire_dtype)} (FLOAT16: "
                        f"|v| <= 65504); use BFLOAT16 or INT8_BLOCK")
                view[...] = np.frombuffer(data, dtype=np.uint8)
            else:
                view[...] = array.reshape(-1)
        return memoryview(self.buffer)

    def pieces(self, arrays: Sequence[Optional[np.ndarray]]
               ) -> Optional["Pieces"]:
        """The Vector's bytes as pieces for one b"".join: the header bytes
        between the tensors and the arrays themselves, so each value is
        copied once, by the join. Only where every array already has the
        wire dtype and is contiguous (float32 gradients of a float32
        session); None otherwise (use write()). The arrays must not change
        until the pieces are joined for the last time."""
        if self.wire_dtype in wire_codec.COMPRESSED or \
                len(arrays) != len(self.data):
            return None
        out = Pieces(len(self.buffer))
        for gap, view, array in zip(self._gap_bytes, self.data, arrays):
            if array is None or array.dtype != self.dtype or \
                    array.size != view.size or \
                    not array.flags["C_CONTIGUOUS"]:
                return None
            out += [gap, array]
        out.append(self._tail_bytes)
        return out

    def encode(self, arrays: Sequence[Optional[np.ndarray]]):
        """pieces() where they apply, else write(): bytes to send, valid
        until the next encode with this template."""
        pieces = self.pieces(arrays)
        return pieces if pieces is not None else self.write(arrays)

    def matches(self, data, at: int) -> bool:
        """Whether data[at:at+len(self)] has this template's bytes outside
        the tensors' values."""
        if len(data) < at + len(self.buffer):
            return False
        mine = self.buffer
        for start, end in self.gaps + [self.tail]:
            if data[at + start:at + end] != mine[start:end]:
                return False
        return True


def _skip_to_field(data, pos: int, end: int, wanted: int
                   ) -> Optional[Tuple[int, int]]:
    """(start, length) of the last length-delimited field `wanted` among
    the fields in data[pos:end], or None."""
    found = None
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, pos = _read_varint(data, pos)
        elif wire == _LENGTH_DELIMITED:
            length, pos = _read_varint(data, pos)
            if number == wanted:
                found = (pos, length)
            pos += length
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        else:
            return None
    if pos != end:
        return None
    return found


def params_offset(data: bytes, template: VectorTemplate) -> Optional[int]:
    """Offset in TaskResponse bytes `data` of Task.params when its bytes
    are `template`'s layout (so template.spans give its tensors' data);
    None otherwise."""
    try:
        task = _skip_to_field(data, 0, len(data), _RESPONSE_TASK)
        if task is None:
            return None
        params = _skip_to_field(data, task[0], task[0] + task[1],
                                _TASK_PARAMS)
    except (IndexError, ValueError):
        return None
    if params is None or params[1] != len(template) or \
            not template.matches(data, params[0]):
        return None
    return params[0]


def request_prefix(fields: Sequence[Tuple[int, object]]) -> bytes:
    """Scalar header fields (number, value): str -> string, int -> varint;
    proto3 defaults (0, "") left out."""
    out = b""
    for number, value in fields:
        if isinstance(value, str):
            if value:
                out += _field(number, value.encode())
        else:
            out += _int_field(number, int(value))
    return out


def scalars_bytes(number: int, scalars: Sequence[Tuple[str, float]]
                  ) -> bytes:
    """Repeated Scalar{name, value} under field `number`."""
    out = b""
    for name, value in scalars:
        body = _field(_SCALAR_NAME, name.encode())
        if value != 0.0 or np.signbit(value):
            body += _SCALAR_VALUE_TAG + np.float64(value).tobytes()
        out += _field(number, body)
    return out


class RawGradientRequest:
    """A SubmitGradientRequest whose vectors are prepared bytes (each a
    serialized Vector). Has the attributes TaskLink sets and reads."""

    def __init__(self, round: int, step: int, phase: int,
                 known_params_version: int, gradients: Sequence[bytes],
                 vjp: Sequence[bytes] = (), jvp: Sequence[bytes] = (),
                 scalars: Sequence[Tuple[str, float]] = ()):
        self.session_id = ""
        self.worker_id = 0
        self.round, self.step, self.phase = round, step, phase
        self.known_params_version = known_params_version
        self.gradients, self.vjp, self.jvp = gradients, vjp, jvp
        self.scalars = scalars

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name)
        g = _GRADIENT
        parts = [request_prefix([
            (g.SESSION_ID_FIELD_NUMBER, self.session_id),
            (g.WORKER_ID_FIELD_NUMBER, self.worker_id),
            (g.ROUND_FIELD_NUMBER, self.round),
            (g.STEP_FIELD_NUMBER, self.step),
            (g.PHASE_FIELD_NUMBER, self.phase)])]
        parts += _fields(g.GRADIENTS_FIELD_NUMBER, self.gradients)
        parts.append(_int_field(g.KNOWN_PARAMS_VERSION_FIELD_NUMBER,
                                self.known_params_version))
        parts += _fields(g.VJP_FIELD_NUMBER, self.vjp)
        parts += _fields(g.JVP_FIELD_NUMBER, self.jvp)
        parts.append(scalars_bytes(g.SCALARS_FIELD_NUMBER, self.scalars))
        return b"".join(parts)


class RawProductsRequest:
    """A SubmitJacobianProductsRequest of prepared Vector bytes."""

    def __init__(self, round: int, step: int, phase: int,
                 known_params_version: int, vjp: Sequence[bytes] = (),
                 jvp: Sequence[bytes] = ()):
        self.session_id = ""
        self.worker_id = 0
        self.round, self.step, self.phase = round, step, phase
        self.known_params_version = known_params_version
        self.vjp, self.jvp = vjp, jvp

    def SerializeToString(self) -> bytes:  # noqa: N802
        p = _PRODUCTS
        parts = [request_prefix([
            (p.SESSION_ID_FIELD_NUMBER, self.session_id),
            (p.WORKER_ID_FIELD_NUMBER, self.worker_id),
            (p.ROUND_FIELD_NUMBER, self.round),
            (p.STEP_FIELD_NUMBER, self.step),
            (p.PHASE_FIELD_NUMBER, self.phase)])]
        parts += _fields(p.VJP_FIELD_NUMBER, self.vjp)
        parts += _fields(p.JVP_FIELD_NUMBER, self.jvp)
        parts.append(_int_field(p.KNOWN_PARAMS_VERSION_FIELD_NUMBER,
                                self.known_params_version))
        return b"".join(parts)
