"""Debian's rsyslog, started by the tests on loopback: it listens on TCP (RFC 5425 TLS
with its OpenSSL driver when asked), takes octet-counted RFC 5424 messages, and writes
each one as received to a file the tests read back. Stopped and started again on the
same port to make an outage."""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.notify.conftest import HOST, free_port

RSYSLOGD = Path("/usr/sbin/rsyslogd")


class RsyslogUnavailableError(RuntimeError):
    pass


@dataclass
class Received:
    """One message as rsyslog parsed it."""

    hostname: str
    app_name: str
    msgid: str
    timestamp: str
    body: str


@dataclass
class Rsyslog:
    root: Path
    tls: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def received_file(self) -> Path:
        return self.root / "received.log"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def url(self) -> str:
        return f"syslog+{'tls' if self.tls else 'tcp'}://{HOST}:{self.port}"

    def _config(self) -> str:
        work = self.root / "work"
        work.mkdir(parents=True, exist_ok=True)
        tls = ""
        stream = ""
        if self.tls:
            _certificates(self.root)
            tls = (f' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="{self.ca_file}"'
                   f' defaultNetstreamDriverCertFile="{self.root / "server.pem"}"'
                   f' defaultNetstreamDriverKeyFile="{self.root / "server.key"}"')  # fmt: skip
            stream = ' StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"'
        # One line per message: the fields the tests check, then the message (JSON).
        return f"""
global(workDirectory="{work}" maxMessageSize="256k"{tls})
module(load="imtcp"{stream})
input(type="imtcp" address="{HOST}" port="{self.port}")
template(name="fields" type="string"
         string="%hostname% %app-name% %msgid% %timereported:::date-rfc3339% %msg%\\n")
action(type="omfile" file="{self.received_file}" template="fields")
"""

    def start(self) -> None:
        if not RSYSLOGD.is_file():
            raise RsyslogUnavailableError(
                f"{RSYSLOGD} not found: run scripts/setup (Debian's rsyslog and rsyslog-openssl)"
            )
        config = self.root / "rsyslog.conf"
        config.write_text(self._config())
        log = (self.root / "rsyslogd.log").open("ab")
        self.process = subprocess.Popen(
            [str(RSYSLOGD), "-n", "-f", str(config), "-i", str(self.root / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RsyslogUnavailableError(
                    f"rsyslogd exited {self.process.returncode}: "
                    + (self.root / "rsyslogd.log").read_text()[-2000:]
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RsyslogUnavailableError(f"rsyslogd did not listen on {HOST}:{self.port}")

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: it writes what it took, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def received(self) -> list[Received]:
        if not self.received_file.exists():
            return []
        out = []
        for line in self.received_file.read_text().splitlines():
            hostname, app_name, msgid, timestamp, body = line.split(" ", 4)
            out.append(Received(hostname, app_name, msgid, timestamp, body.strip()))
        return out


def _certificates(root: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, written as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftwarden test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (root / "ca.pem").write_bytes(ca.public_bytes(pem))
    (root / "server.pem").write_bytes(server.public_bytes(pem))
    (root / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
