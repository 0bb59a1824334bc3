"""A Python worker answers the spectrum diagnostics unchanged.

The session estimates the spectrum of J every few steps with GRADIENT and
PRODUCTS rounds that the Python worker already knows how to answer; on the
bilinear game x*y the eigenvalues are +-i."""

from gameopt._stubs import pb

import threading
import time

import gameopt

# Exact products in float64 on a 2 x 2 operator: Arnoldi is a dense
# decomposition here, good to rounding.
TOLERANCE = 1e-8


def test_python_worker_answers_spectrum_rounds(server, client):
    config = gameopt.build_session_config(
        gameopt.BilinearGame(), algorithm="conopt", gamma=1.0,
        learning_rate=0.2, max_steps=4, seed=1, float64=True)
    config.spectrum.every_steps = 2
    config.spectrum.options.add(operator=pb.GAME_JACOBIAN, k=2, tol=1e-12)
    config.spectrum.options.add(operator=pb.ALGORITHM_FIELD, k=2, tol=1e-12)
    session_id = client.create_session(config)
    gameopt.Worker(server.address, session_id, gameopt.BilinearGame(),
                   name="py").run()

    spectra = client.get_spectrum(session_id)
    # J and the ConOpt field at steps 0, 2 and 4.
    assert [(s.step, s.operator) for s in spectra] == [
        (step, op) for step in (0, 2, 4)
        for op in (pb.GAME_JACOBIAN, pb.ALGORITHM_FIELD)]
    for s in spectra:
        assert s.converged
        top = s.largest_imag[0]
        # J = [[0, 1], [-1, 0]]: +-i. J + J^T J = J + I: 1 +- i.
        expected_re = 0.0 if s.operator == pb.GAME_JACOBIAN else 1.0
        assert abs(top.re - expected_re) < TOLERANCE
        assert abs(top.im - 1.0) < TOLERANCE


def _estimate_while_a_worker_plays(server, client, session_id, **options):
    """Client.estimate_spectrum(session_id, **options), requested before any
    submission (so it starts at step 0), answered by a Python worker that
    plays the session to its end."""
    result = {}
    request = threading.Thread(target=lambda: result.update(
        spectrum=client.estimate_spectrum(session_id, **options)))
    request.start()
    for _ in range(2000):
        if client.get_session(session_id).phase_label == "spectrum: gradient":
            break
        time.sleep(0.005)
    gameopt.Worker(server.address, session_id, gameopt.BilinearGame(),
                   name="py").run()
    request.join(timeout=60)
    return result["spectrum"]


def test_estimate_spectrum_on_request(server, client):
    """Client.estimate_spectrum waits while the Python worker computes."""
    config = gameopt.build_session_config(
        gameopt.BilinearGame(), algorithm="simgd", learning_rate=0.2,
        max_steps=2, seed=1, float64=True)
    session_id = client.create_session(config)
    spectrum = _estimate_while_a_worker_plays(server, client, session_id,
                                              k=2, tol=1e-12)
    assert spectrum.step == 0 and spectrum.converged
    assert abs(spectrum.largest_imag[0].re) < TOLERANCE
    assert abs(spectrum.largest_imag[0].im - 1.0) < TOLERANCE


def test_estimate_spectrum_smallest_real_and_step_diagnostics(server, client):
    """smallest_real=True adds the group; a ConOpt step reports |xi| against
    |J^T xi| in SessionStatus.diagnostics (bilinear: J orthogonal, so the
    stationarity ratio is 1)."""
    config = gameopt.build_session_config(
        gameopt.BilinearGame(), algorithm="conopt", gamma=1.0,
        learning_rate=0.2, max_steps=3, seed=1, float64=True)
    session_id = client.create_session(config)
    spectrum = _estimate_while_a_worker_plays(
        server, client, session_id, operator="field", k=2, tol=1e-12,
        smallest_real=True)
    # J + J^T J = J + I: 1 +- i, both of real part 1.
    assert [round(e.re, 8) for e in spectrum.smallest_real] == [1.0, 1.0]
    assert sorted(round(e.im, 8) for e in spectrum.smallest_real) == [-1, 1]
    d = client.get_session(session_id).diagnostics
    assert d.xi_norm > 0
    assert abs(d.stationarity_ratio - 1.0) < TOLERANCE
    assert not d.has_rotation_index
