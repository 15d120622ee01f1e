"""Real local alert endpoints: an HTTP server standing in for Slack, aiosmtpd for SMTP."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: The path part of the webhook URL is the secret Slack hands out.
WEBHOOK_SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSecretToken123"
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-Pa55word-do-not-leak"


@dataclass
class Webhook:
    """A local webhook: records each POST and answers with the queued statuses, then 200."""

    url: str
    posts: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.paths.append(self.path)
            hook.posts.append(json.loads(body))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_port}{WEBHOOK_SECRET_PATH}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join()


class _Inbox:
    """aiosmtpd handler keeping every message it accepts; the next ``refuse`` messages are
    refused with a temporary error (a mail server having a bad minute)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = 0
        self.refused = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class _AnyPortController(Controller):
    """A Controller on an OS-chosen port: learn the port before aiosmtpd connects to itself."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox


def _start_smtp(**kwargs: object) -> tuple[_AnyPortController, SmtpServer]:
    inbox = _Inbox()
    controller = _AnyPortController(inbox, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    return controller, SmtpServer("127.0.0.1", controller.port, inbox)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP, no TLS and no AUTH (like a local relay)."""
    controller, server = _start_smtp()
    yield server
    controller.stop()


@pytest.fixture
def tls_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 that the client trusts via SSL_CERT_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture
def tls_smtp_server(tls_certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    """SMTP that offers STARTTLS and accepts AUTH (only over TLS) for SMTP_USER/SMTP_PASSWORD."""

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == SMTP_PASSWORD)
        return AuthResult(success=ok)

    controller, server = _start_smtp(tls_context=tls_certificate, require_starttls=True,
                                     authenticator=authenticate, auth_required=True,
                                     auth_require_tls=True)
    yield server
    controller.stop()


@dataclass
class HungWebhook:
    """A webhook that accepts connections and never finishes answering."""

    url: str
    connections: list[socket.socket] = field(default_factory=list)


@pytest.fixture(params=["silent", "trickle"])
def hung_webhook(request) -> Iterator[HungWebhook]:
    """``silent`` reads the request and never answers; ``trickle`` sends its status line one
    byte every 0.2 s, so no single read ever waits long enough to time out."""
    listener = socket.create_server(("127.0.0.1", 0))
    hook = HungWebhook(url=f"http://127.0.0.1:{listener.getsockname()[1]}{WEBHOOK_SECRET_PATH}")
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
            if stop.wait(0.2):
                return
            if request.param == "trickle":
                conn.sendall(bytes([byte]))

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            hook.connections.append(conn)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield hook
    stop.set()
    thread.join()
    for conn in hook.connections:
        conn.close()
    listener.close()
