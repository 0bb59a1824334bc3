"""Python and Node.js workers and gameopt_client against a gameopt_server
with TLS and bearer tokens (--tls_cert, --tls_key, --tokens_file), with certificates
made by tests/tls/make_test_certs.sh (the openssl CLI)."""

import os
import subprocess

import grpc
import pytest

import gameopt
from conftest import NODE_DIR, REPO
from testutil import run

ADMIN = "py-admin-token-000001"
WORKER = "py-worker-token-000001"
READER = "py-reader-token-000001"
SESSION = "bilinear-py"  # named by the worker's and reader's tokens
STEPS = 20


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    run([REPO / "tests" / "tls" / "make_test_certs.sh", folder])
    (folder / "tokens.txt").write_text(
        f"{ADMIN} admin\n{WORKER} worker {SESSION} {SESSION}-cli\n"
        f"{READER} reader *\n")
    return folder


@pytest.fixture
def secure_server(server_binary, certs):
    with gameopt.LocalServer(server_binary, extra_args=[
            f"--tls_cert={certs / 'server.pem'}",
            f"--tls_key={certs / 'server.key'}",
            f"--tokens_file={certs / 'tokens.txt'}"]) as local:
        yield local


def create_bilinear(address, roots, session_id):
    config = gameopt.build_session_config(
        gameopt.BilinearGame(), algorithm="conopt", gamma=1.0,
        learning_rate=0.2, max_steps=STEPS)
    with gameopt.Client(address, root_certificates=roots,
                        token=ADMIN) as admin:
        assert admin.create_session(config, session_id) == session_id


def test_python_worker_with_roots_and_token_plays(secure_server, certs):
    roots = str(certs / "ca.pem")  # a path; PEM bytes work too
    create_bilinear(secure_server.address, roots, SESSION)
    worker = gameopt.Worker(secure_server.address, SESSION,
                            gameopt.BilinearGame(), name="py-tls",
                            root_certificates=(certs / "ca.pem").read_bytes(),
                            token=WORKER)
    worker.run()
    with gameopt.Client(secure_server.address, root_certificates=roots,
                        token=READER) as reader:
        params = reader.get_parameters(SESSION)
        assert params.step == STEPS
        # The reader's `*` covers every session: here, one.
        assert [s.session_id for s in reader.list_sessions()] == [SESSION]


def test_wrong_role_no_token_and_plaintext_are_refused(secure_server, certs):
    roots = str(certs / "ca.pem")
    create_bilinear(secure_server.address, roots, SESSION)
    cases = [
        (dict(root_certificates=roots, token=READER),
         grpc.StatusCode.PERMISSION_DENIED),
        (dict(root_certificates=roots), grpc.StatusCode.UNAUTHENTICATED),
        (dict(root_certificates=roots, token="not-a-valid-token-0001"),
         grpc.StatusCode.UNAUTHENTICATED),
        (dict(token=WORKER), grpc.StatusCode.UNAVAILABLE),  # plaintext
    ]
    for options, code in cases:
        worker = gameopt.Worker(secure_server.address, SESSION,
                                gameopt.BilinearGame(), max_retries=0,
                                **options)
        with pytest.raises(grpc.RpcError) as error:
            worker.run()
        assert error.value.code() == code, options
    with gameopt.Client(secure_server.address, root_certificates=roots,
                        token=WORKER) as worker_client:
        with pytest.raises(grpc.RpcError) as error:
            worker_client.delete_session(SESSION)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_gameopt_client_with_tls_roots_and_token(secure_server, certs,
                                                  client_binary):
    cli_session = f"{SESSION}-cli"
    common = [f"--server={secure_server.address}",
              f"--tls_roots={certs / 'ca.pem'}", "--game=bilinear",
              "--algorithm=conopt", "--lr=0.2", f"--steps={STEPS}"]
    # The admin token from GAMEOPT_TOKEN, the worker's from --token.
    created = run([client_binary, "create", *common,
                   f"--session={cli_session}"],
                  env=dict(os.environ, GAMEOPT_TOKEN=ADMIN))
    assert created.strip() == cli_session
    result = run([client_binary, "work", *common, f"--session={cli_session}",
                  f"--token={WORKER}"])
    assert f"session={cli_session}" in result
    assert f"steps={STEPS}" in result
    # Without a token the server refuses gameopt_client too.
    refused = subprocess.run(
        [str(client_binary), "work", *common, f"--session={cli_session}"],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "GAMEOPT_TOKEN"})
    assert refused.returncode != 0
    assert "UNAUTHENTICATED" in refused.stderr


def test_node_worker_with_roots_and_token_plays(secure_server, certs, node):
    roots = str(certs / "ca.pem")
    create_bilinear(secure_server.address, roots, SESSION)
    worker = [node, NODE_DIR / "worker.js", secure_server.address, SESSION,
              "node-tls"]
    tls_env = dict(os.environ, GAMEOPT_TLS_ROOTS=roots)
    refused = subprocess.run([str(a) for a in worker], capture_output=True,
                             text=True, timeout=60,
                             env=dict(tls_env, GAMEOPT_TOKEN=READER))
    assert refused.returncode == 1
    assert "PERMISSION_DENIED" in refused.stderr, refused.stderr
    run(worker, env=dict(tls_env, GAMEOPT_TOKEN=WORKER))
    with gameopt.Client(secure_server.address, root_certificates=roots,
                        token=READER) as reader:
        assert reader.get_parameters(SESSION).step == STEPS


def test_server_names_the_flag_and_file_it_cannot_use(server_binary,
                                                      tmp_path):
    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [server_binary, "--address=127.0.0.1:0", f"--tls_cert={missing}",
         f"--tls_key={missing}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "--tls_cert" in result.stderr and str(missing) in result.stderr
