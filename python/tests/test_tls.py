"""wss:// with the TLS options (a private PKI made with the openssl command at test time) and
ws:// through an HTTP CONNECT proxy (a small one in this process)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import REQUIRE_PEERS
from helpers import EVENT_WAIT, echo

import wshandle


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Dict[str, Path]:
    """A CA and a certificate for 127.0.0.1/localhost signed by it."""
    if shutil.which("openssl") is None:
        if REQUIRE_PEERS:
            pytest.fail("the openssl command is needed to make the test certificates")
        pytest.skip("no openssl command")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=wshandle python test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d
    )
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        cwd=d,
    )
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


@pytest.fixture
def wss_server(make_server, pki):
    return make_server(echo, scheme="wss", tls_cert_file=str(pki["cert"]), tls_key_file=pki["key"])


def test_wss_echo_with_a_private_ca(wss_server, pki) -> None:
    with wshandle.connect(wss_server.url, tls_ca_file=pki["ca"], receive_timeout=EVENT_WAIT) as ws:
        ws.send("over TLS")
        assert ws.recv() == "over TLS"
        big = bytes(range(256)) * 4096
        ws.send(big)
        assert ws.recv() == big
    assert wss_server.result()["client_close"] == (1000, "")


def test_wss_unknown_issuer_is_a_secure_failure(wss_server) -> None:
    with pytest.raises(wshandle.SecureFailure) as info:
        wshandle.connect(wss_server.url)  # the system roots do not know the test CA
    assert info.value.code == wshandle.ErrorCode.SECURE_FAILURE
    assert info.value.detail


def test_wss_insecure_skip_verify(wss_server) -> None:
    with wshandle.connect(wss_server.url, tls_insecure_skip_verify=True) as ws:
        ws.send(b"unverified")
        assert ws.recv() == b"unverified"


def test_wss_listener_needs_a_certificate() -> None:
    with wshandle.listen("wss://127.0.0.1:0/", receive_timeout=EVENT_WAIT) as listener:
        with pytest.raises(wshandle.SecureFailure, match="TLS_CERT_FILE"):
            listener.accept()


class ConnectProxy:
    """An HTTP CONNECT proxy for one tunnel at a time, on 127.0.0.1, in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(EVENT_WAIT * 3)  # the deadline of the accept loop
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: List[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                client, _ = self.sock.accept()
                threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()
        except OSError:
            return

    def _tunnel(self, client: socket.socket) -> None:
        client.settimeout(EVENT_WAIT)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        self.requests.append(line)
        host, port = line.split()[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=EVENT_WAIT)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        upstream.sendall(head.split(b"\r\n\r\n", 1)[1])

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        t.start()
        pipe(client, upstream)
        t.join(EVENT_WAIT)
        client.close()
        upstream.close()

    def close(self) -> None:
        self.sock.close()


def test_ws_through_a_connect_proxy(echo_server) -> None:
    proxy = ConnectProxy()
    try:
        with wshandle.connect(echo_server.url, proxy=proxy.url, receive_timeout=EVENT_WAIT) as ws:
            ws.send("through the tunnel")
            assert ws.recv() == "through the tunnel"
        assert proxy.requests == [f"CONNECT 127.0.0.1:{echo_server.port} HTTP/1.1"]
    finally:
        proxy.close()


def test_proxy_option_is_refused_after_connect(echo_server) -> None:
    with wshandle.connect(echo_server.url) as ws:
        with pytest.raises(wshandle.IncorrectHandleState):
            from wshandle import Option, _bindings

            rc = _bindings.set_string(ws.handle, Option.PROXY, b"http://127.0.0.1:1")
            if rc:
                raise wshandle._errors.error_for(rc)
