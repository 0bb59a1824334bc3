"""gRPC channels to a gameopt server: message limits raised, TLS (also
mutual) and bearer tokens."""
import collections
from typing import Optional, Tuple, Union

import grpc


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials",
                         "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call. An interceptor
    rather than call credentials, which gRPC refuses on plaintext channels
    (tokens over plaintext are fine on loopback)."""

    def __init__(self, token: str):
        self._entry = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(self, continuation, details, request):
        metadata = list(details.metadata or []) + [self._entry]
        return continuation(_CallDetails(
            details.method, details.timeout, metadata, details.credentials,
            details.wait_for_ready, getattr(details, "compression", None)),
            request)


PemSource = Union[bytes, str, None]


def _pem(source: PemSource) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as pem_file:
        return pem_file.read()


def make_channel(address: str, max_message_mb: int = 1024,
                 root_certificates: PemSource = None,
                 token: Optional[str] = None,
                 certificate_chain: PemSource = None,
                 private_key: PemSource = None) -> grpc.Channel:
    """A channel with gRPC's 4 MiB message limits raised.

    TLS when `root_certificates` is given: the PEM roots that signed the
    server's certificate, as bytes or the path of a PEM file.
    `certificate_chain` and `private_key` (likewise) present a client
    certificate, for servers that require mutual TLS. `token` is sent on
    every call as `authorization: Bearer <token>` (servers with a tokens
    file), over TLS or plaintext."""
    limit = min(max_message_mb, 2047) * 1024 * 1024
    options = [("grpc.max_receive_message_length", limit),
               ("grpc.max_send_message_length", limit)]
    if root_certificates is None:
        if certificate_chain is not None or private_key is not None:
            raise ValueError("a client certificate needs root_certificates")
        channel = grpc.insecure_channel(address, options=options)
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_pem(root_certificates),
            private_key=_pem(private_key),
            certificate_chain=_pem(certificate_chain))
        channel = grpc.secure_channel(address, credentials, options=options)
    if token:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def channel_for(address_or_channel, max_message_mb: int = 1024,
                **channel_options) -> Tuple[grpc.Channel, bool]:
    """(channel, owned): make_channel(address, ...) for an address, or the
    given channel as is (then channel options are an error)."""
    if isinstance(address_or_channel, str):
        return make_channel(address_or_channel, max_message_mb,
                            **channel_options), True
    if any(value is not None for value in channel_options.values()):
        raise ValueError(f"{sorted(channel_options)} apply to an address, "
                         f"not to a channel")
    return address_or_channel, False
