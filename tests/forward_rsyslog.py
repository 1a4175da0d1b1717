"""A real rsyslog for the forwarding tests: own config, work dir and pid file under tmp_path.

``rsyslogd -n -f CONF -i PIDFILE`` receives on loopback (or inside a test network namespace) over UDP,
TCP (octet counting is detected by imtcp), TLS (gtls driver) and RELP (imrelp), and writes each
message's raw bytes (``%rawmsg%``) as one line. The ruleset queue is Direct and omfile flushes at
the end of each transaction, so a message RELP acknowledged is already in the file (page cache) when
rsyslog is killed with SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
MODULE_DIR = Path("/usr/lib/x86_64-linux-gnu/rsyslog")


def _has_module(name: str) -> bool:
    return any((d / f"{name}.so").exists() for d in (MODULE_DIR, Path("/usr/lib/rsyslog")))


needs_rsyslog = pytest.mark.skipif(
    not Path(RSYSLOGD).exists(), reason="rsyslogd not installed (run tests/siem_setup.sh)"
)
needs_relp = pytest.mark.skipif(
    not _has_module("imrelp"), reason="rsyslog-relp not installed (tests/siem_setup.sh)"
)
needs_gtls = pytest.mark.skipif(
    not _has_module("lmnsd_gtls"), reason="rsyslog-gnutls not installed (tests/siem_setup.sh)"
)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path


def make_certs(directory: Path, server_names: tuple[str, ...] = ("localhost",),
               server_ips: tuple[str, ...] = ("127.0.0.1",)) -> Certs:
    """A CA, a server and a client certificate (EC P-256), and an unrelated CA, with the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "rogue"):
        run("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
            "-subj", f"/CN=otsentry test {ca} CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    san = ",".join([*(f"DNS:{n}" for n in server_names), *(f"IP:{ip}" for ip in server_ips)])
    for name, usage, extra in (("server", "serverAuth", san), ("client", "clientAuth", "DNS:sensor-1")):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(
            f"subjectAltName={extra}\nextendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature\n"
        )
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                 directory / "client.pem", directory / "client.key", directory / "rogue.pem")


class Rsyslog:
    """One rsyslogd with the listeners asked for; ``lines()`` reads what it wrote."""

    def __init__(self, workdir: Path, *, udp: bool = False, tcp: bool = False, tls: Certs | None = None,
                 tls_client_auth: bool = False, relp: bool = False, relp_tls: Certs | None = None,
                 address: str = "127.0.0.1",
                 netns: str | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.output = self.dir / "received.log"
        self.address = address
        self.netns = netns
        self.ports: dict[str, int] = {}
        if udp:
            self.ports["udp"] = free_port(socket.SOCK_DGRAM)
        if tcp:
            self.ports["tcp"] = free_port()
        if tls:
            self.ports["tls"] = free_port()
        if relp or relp_tls:
            self.ports["relp"] = free_port()
        self.relp_tls = relp_tls
        self.tls = tls
        self.tls_client_auth = tls_client_auth
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(self._config())
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        out = [f'global(workDirectory="{self.dir / "work"}" maxMessageSize="256k"']
        if self.tls:
            out[0] += (f' defaultNetstreamDriverCAFile="{self.tls.ca}"'
                       f' defaultNetstreamDriverCertFile="{self.tls.server_cert}"'
                       f' defaultNetstreamDriverKeyFile="{self.tls.server_key}"')
        out[0] += ")"
        out += [
            'template(name="raw" type="string" string="%rawmsg%\\n")',
            'ruleset(name="out" queue.type="Direct") {',
            f'  action(type="omfile" file="{self.output}" template="raw"'
            ' flushOnTXEnd="on" asyncWriting="off")',
            "}",
        ]
        if "udp" in self.ports:
            out += ['module(load="imudp")',
                    f'input(type="imudp" address="{self.address}" port="{self.ports["udp"]}" ruleset="out")']
        if "tcp" in self.ports:
            out += ['module(load="imtcp" maxSessions="100")',
                    f'input(type="imtcp" address="{self.address}" port="{self.ports["tcp"]}" ruleset="out")']
        if "tls" in self.ports:
            auth = "x509/certvalid" if self.tls_client_auth else "anon"
            out += ['module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"'
                    f' streamDriver.authMode="{auth}")',
                    f'input(type="imtcp" address="{self.address}" port="{self.ports["tls"]}" ruleset="out")']
        if "relp" in self.ports:
            port = self.ports["relp"]
            tls = ""
            if self.relp_tls:  # librelp over TLS asks for a client certificate signed by the CA
                c = self.relp_tls
                tls = (f' tls="on" tls.caCert="{c.ca}" tls.myCert="{c.server_cert}"'
                       f' tls.myPrivKey="{c.server_key}" tls.authMode="certvalid"')
            out += ['module(load="imrelp")',
                    f'input(type="imrelp" address="{self.address}" port="{port}" ruleset="out"{tls})']
        return "\n".join(out) + "\n"

    def _command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args] if self.netns else list(args)

    def start(self, timeout: float = 10.0) -> Rsyslog:
        pidfile = self.dir / "rsyslogd.pid"
        pidfile.unlink(missing_ok=True)
        log = open(self.dir / "rsyslogd.stderr", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self._command(RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(pidfile)),
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.dir / 'rsyslogd.stderr').read_text()[-2000:]}")
            if self._listening():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"rsyslogd did not listen in {timeout} s: {self.ports}")

    def _listening(self) -> bool:
        want_tcp = {p for k, p in self.ports.items() if k != "udp"}
        want_udp = {self.ports["udp"]} if "udp" in self.ports else set()
        tables = {}
        for name in ("tcp", "udp"):
            result = subprocess.run(self._command("cat", f"/proc/net/{name}"), capture_output=True, text=True)
            tables[name] = result.stdout.splitlines()[1:]
        tcp_listen = {int(r.split()[1].split(":")[1], 16) for r in tables["tcp"] if r.split()[3] == "0A"}
        udp_bound = {int(r.split()[1].split(":")[1], 16) for r in tables["udp"]}
        return want_tcp <= tcp_listen and want_udp <= udp_bound

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            pid = self._rsyslog_pid()
            os.kill(pid, sig)
            self.process.wait(10)
        self.process = None

    def _rsyslog_pid(self) -> int:
        assert self.process is not None
        return self.process.pid  # ip netns exec execs rsyslogd in place: the same pid

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def lines(self) -> list[bytes]:
        if not self.output.exists():
            return []
        return self.output.read_bytes().splitlines()

    def wait_lines(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            time.sleep(0.02)
        return self.lines()
