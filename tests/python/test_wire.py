"""gameopt.torch_wire: hand-written submissions equal protobuf's bytes, and
the parameters are read from the TaskResponse bytes only where they have
the session's layout."""

import numpy as np
import pytest
import torch

from gameopt._stubs import pb
from gameopt.torch import GameOptimizer
from gameopt.torch_wire import RawGradientRequest, RawProductsRequest, \
    VectorTemplate, params_offset, varint

LAYOUT = [
    ("generator", [("w", (3, 4)), ("b", (4,)), ("scale", ())]),
    ("discriminator", [("net.0.weight", (2, 3)), ("net.0.bias", (2,))]),
    ("critic", [("c", (5,))]),
]


def numel(shape):
    return int(np.prod(shape)) if shape else 1


def random_values(rng, layout):
    return [rng.standard_normal(numel(shape)).reshape(shape)
            for _, tensors in layout for _, shape in tensors]


def proto_vector(layout, values, dtype):
    np_dtype = "<f4" if dtype == pb.FLOAT32 else "<f8"
    vector = pb.Vector()
    i = 0
    for player, tensors in layout:
        out = vector.players.add(player=player)
        for name, shape in tensors:
            out.tensors.add(name=name, dtype=dtype, shape=shape,
                            data=np.asarray(values[i], np_dtype).tobytes())
            i += 1
    return vector


@pytest.mark.parametrize("dtype", [pb.FLOAT32, pb.FLOAT64])
def test_vector_template_bytes_equal_protobuf(dtype):
    rng = np.random.default_rng(1)
    template = VectorTemplate(LAYOUT, dtype)
    for _ in range(3):  # the template is reused step after step
        values = random_values(rng, LAYOUT)
        values[1] = None  # zeros
        got = template.fill(values)
        values[1] = np.zeros(4)
        want = proto_vector(LAYOUT, values, dtype)
        assert got == want.SerializeToString(deterministic=True)
        assert pb.Vector.FromString(got) == want


@pytest.mark.parametrize("dtype", [pb.FLOAT32, pb.FLOAT64])
@pytest.mark.parametrize("fused", [False, True])
def test_gradient_request_bytes_equal_protobuf(dtype, fused):
    rng = np.random.default_rng(2)
    subset = LAYOUT[:2]  # e.g. an AltGD stage's players
    grads = [VectorTemplate(subset, dtype).fill(random_values(rng, subset))
             for _ in range(2)]
    full = VectorTemplate(LAYOUT, dtype)
    vjp = [full.fill(random_values(rng, LAYOUT))] if fused else []
    jvp = [full.fill(random_values(rng, LAYOUT))] if fused else []
    scalars = [("loss/generator", 0.25), ("d_real", -1.5e-300),
               ("zero", 0.0)]
    raw = RawGradientRequest(7, 3, 1, 2, grads, vjp, jvp, scalars)
    raw.session_id, raw.worker_id = "sess-1", 5
    want = pb.SubmitGradientRequest(
        session_id="sess-1", worker_id=5, round=7, step=3, phase=1,
        known_params_version=2,
        gradients=[pb.Vector.FromString(g) for g in grads],
        vjp=[pb.Vector.FromString(v) for v in vjp],
        jvp=[pb.Vector.FromString(v) for v in jvp])
    for name, value in scalars:
        want.scalars.add(name=name, value=value)
    got = raw.SerializeToString()
    assert got == want.SerializeToString(deterministic=True)
    assert pb.SubmitGradientRequest.FromString(got) == want


def test_products_request_and_header_defaults_equal_protobuf():
    rng = np.random.default_rng(3)
    full = VectorTemplate(LAYOUT, pb.FLOAT32)
    vjp = [full.fill(random_values(rng, LAYOUT)) for _ in range(2)]
    raw = RawProductsRequest(0, 0, 0, -1, vjp, [])  # defaults, negative
    raw.session_id, raw.worker_id = "s", 1
    want = pb.SubmitJacobianProductsRequest(
        session_id="s", worker_id=1, known_params_version=-1,
        vjp=[pb.Vector.FromString(v) for v in vjp])
    assert raw.SerializeToString() == want.SerializeToString(
        deterministic=True)
    assert varint(300) == b"\xac\x02"


def test_written_views_serialize_as_copies_until_the_next_write():
    # GameOptimizer's path: write() returns a view of the template's bytes
    # (no copy), one template per vector of a request.
    rng = np.random.default_rng(5)
    first, second = (VectorTemplate(LAYOUT, pb.FLOAT32) for _ in range(2))
    a, b = random_values(rng, LAYOUT), random_values(rng, LAYOUT)
    views = [first.write(a), second.write(b)]
    raw = RawProductsRequest(2, 1, 1, 3, views, [])
    raw.session_id, raw.worker_id = "s", 4
    want = pb.SubmitJacobianProductsRequest(
        session_id="s", worker_id=4, round=2, step=1, phase=1,
        known_params_version=3,
        vjp=[pb.Vector.FromString(first.fill(a)),
             pb.Vector.FromString(second.fill(b))])
    serialized = raw.SerializeToString()
    assert serialized == want.SerializeToString(deterministic=True)
    # A retry serializes the same bytes; a new write changes the view.
    assert raw.SerializeToString() == serialized
    first.write(b)
    assert bytes(views[0]) == second.fill(b)


@pytest.mark.parametrize("dtype", [pb.FLOAT32, pb.FLOAT64])
def test_pieces_join_to_the_template_bytes(dtype):
    # The tensors themselves as pieces (one copy, by the join) where they
    # have the wire dtype; write() where they do not.
    rng = np.random.default_rng(6)
    template = VectorTemplate(LAYOUT, dtype)
    values = [v.astype(template.dtype) for v in random_values(rng, LAYOUT)]
    pieces = template.pieces(values)
    assert pieces is not None and pieces.nbytes == len(template)
    raw = RawGradientRequest(1, 2, 0, 0, [pieces])
    raw.session_id, raw.worker_id = "s", 1
    want = pb.SubmitGradientRequest(
        session_id="s", worker_id=1, round=1, step=2,
        gradients=[pb.Vector.FromString(template.fill(values))])
    assert raw.SerializeToString() == want.SerializeToString(
        deterministic=True)
    other = np.float64 if dtype == pb.FLOAT32 else np.float32
    assert template.pieces([values[0].astype(other)] + values[1:]) is None
    assert template.pieces([None] + values[1:]) is None
    assert template.pieces(values[1:]) is None
    assert isinstance(template.encode([None] + values[1:]), memoryview)


def test_tune_malloc_applies_on_glibc():
    import gameopt
    assert gameopt.tune_malloc() is True  # Debian: glibc


@pytest.mark.parametrize("dtype", [pb.FLOAT32, pb.FLOAT64])
def test_params_are_found_only_in_the_sessions_layout(dtype):
    rng = np.random.default_rng(4)
    values = random_values(rng, LAYOUT)
    params = proto_vector(LAYOUT, values, dtype)
    probe = proto_vector(LAYOUT, random_values(rng, LAYOUT), dtype)
    response = pb.TaskResponse(worker_id=3, task=pb.Task(
        kind=pb.PRODUCTS, step=4, round=9, phase_label="consensus",
        players=["generator"], probes=[probe, probe], params=params,
        params_included=True, params_version=4, seed=2**63 + 5))
    raw = response.SerializeToString()
    template = VectorTemplate(LAYOUT, dtype)
    at = params_offset(raw, template)
    assert at is not None
    for value, (offset, count) in zip(values, template.spans):
        got = np.frombuffer(raw, dtype=template.dtype, count=count,
                            offset=at + offset)
        np.testing.assert_array_equal(
            got, np.asarray(value, template.dtype).reshape(-1))
    # Another dtype, another shape, a missing tensor, no params: None.
    other = pb.FLOAT64 if dtype == pb.FLOAT32 else pb.FLOAT32
    assert params_offset(raw, VectorTemplate(LAYOUT, other)) is None
    reshaped = [LAYOUT[0], ("discriminator", [("net.0.weight", (3, 2)),
                                              ("net.0.bias", (2,))]),
                LAYOUT[2]]
    assert params_offset(raw, VectorTemplate(reshaped, dtype)) is None
    assert params_offset(raw, VectorTemplate(LAYOUT[:2], dtype)) is None
    response.task.ClearField("params")
    assert params_offset(response.SerializeToString(), template) is None
    assert params_offset(raw[:-3], template) is None  # truncated


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_optimizer_reads_the_servers_params_from_the_bytes(server, dtype):
    torch.manual_seed(0)
    g = torch.nn.Linear(3, 2).to(dtype)
    d = torch.nn.Linear(2, 1).to(dtype)
    opt = GameOptimizer(server.address, {"generator": g, "discriminator": d},
                        algorithm="conopt", optimizer="sgd", lr=0.1,
                        gamma=1.0, handle_signals=False)
    fast = []
    load_raw = opt._load_raw
    opt._load_raw = lambda raw: fast.append(load_raw(raw)) or fast[-1]
    x = torch.randn(8, 3, dtype=dtype)

    def closure():
        out = d(g(x)).mean()
        return {"generator": -out, "discriminator": out}

    with opt:
        for _ in range(3):
            before = [p.detach().clone() for p in opt._params]
            opt.step(closure)
            assert any(not torch.equal(a, p) for a, p in
                       zip(before, opt._params))
        params = opt.client.get_parameters(opt.session_id).vector
    # The first is JoinSession's answer (a protobuf request and answer, the
    # message's path); every submission's answer is read from its bytes.
    assert len(fast) == 4 and fast[0] is False and all(fast[1:]), fast
    expected = proto_vector(opt._layout, [p.detach().numpy()
                                          for p in opt._params],
                            opt._dtype)
    assert params == expected


def test_a_graph_from_before_the_step_is_refused_after_it(server):
    g = torch.nn.Linear(2, 2)
    d = torch.nn.Linear(2, 1)
    opt = GameOptimizer(server.address, {"generator": g, "discriminator": d},
                        optimizer="sgd", lr=0.1, handle_signals=False)
    x = torch.randn(4, 2)

    def closure():
        out = d(torch.tanh(g(x))).mean()
        return {"generator": -out, "discriminator": out}

    with opt:
        opt.step(closure)
        stale = (d(torch.tanh(g(x))) ** 2).mean()  # saves the parameters
        opt.step(closure)  # new parameters written from the wire bytes
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        stale.backward()
