"""Connected sockets for the stream transports: TCP, optionally TLS (RFC 5425 profile).

RFC 5425 §5.1: the client MUST verify the server's certificate (here against ``tls_ca``, or the
system store) and its name; it MAY present its own certificate for mutual authentication.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl

from otsentry.outputs.config import Destination
from otsentry.outputs.transports.base import HardError, TransportError

TLS_SETTLE = 0.25  # seconds to wait after a TLS handshake for a refusal from the server


def tls_context(dest: Destination) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=dest.tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not dest.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if dest.tls_cert:
        context.load_cert_chain(dest.tls_cert, dest.tls_key)
    return context


def connect(dest: Destination) -> socket.socket:
    try:
        sock = socket.create_connection((dest.host, dest.port), timeout=dest.connect_timeout)
    except OSError as exc:
        raise TransportError(f"connect {dest.host}:{dest.port}: {exc}") from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if dest.uses_tls:
        try:
            context = tls_context(dest)
            sock = context.wrap_socket(sock, server_hostname=dest.tls_server_name or dest.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise HardError(f"TLS: server certificate rejected: {exc.verify_message}") from exc
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise TransportError(f"TLS handshake with {dest.host}:{dest.port}: {exc}") from exc
    sock.settimeout(dest.write_timeout)
    if dest.uses_tls and read_available(sock, TLS_SETTLE) is None:
        # TLS 1.3 finishes the client's handshake before the server has checked our certificate: a
        # refusal arrives as an alert right after, and data sent into it would be TCP-acknowledged.
        sock.close()
        raise HardError("TLS: the receiver closed the connection after the handshake (client certificate "
                        "missing or refused?)")
    return sock


def send_all(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (OSError, ssl.SSLError) as exc:  # socket.timeout is an OSError: the peer stopped reading
        raise TransportError(f"send: {exc or type(exc).__name__}") from exc


def read_available(sock: socket.socket, timeout: float) -> bytes | None:
    """Bytes the peer sent within ``timeout`` (b"" if none); None when the peer closed the connection."""
    ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not ready:
        return b""
    chunks = []
    restore = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            try:
                data = sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                break  # nothing more, or only TLS records without application data (session tickets)
            except (OSError, ssl.SSLError):
                return None
            if not data:
                return None if not chunks else b"".join(chunks)
            chunks.append(data)
    finally:
        sock.settimeout(restore)
    return b"".join(chunks)


def close_quietly(sock: socket.socket) -> None:
    """Close; a TLS connection first sends its close_notify so the receiver sees a clean end."""
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(0.2)
            sock.unwrap().close()
            return
    with contextlib.suppress(OSError):
        sock.close()
