"""The Debian package: built by packaging/build-deb.sh, installed into a clean root, upgraded, removed and
purged.

The root is an empty directory with a dpkg database that knows only the package's dependencies (python3,
adduser, iproute2 — their files are the host's, a Debian 12 system) and an /etc/passwd with root alone.
dpkg installs into it with ``--root`` and ``--force-script-chrootless``: the maintainer scripts run on the
host with DPKG_ROOT set, which they honour. The installed sensor is run, and the unit verified, from a
private mount namespace where the root's /opt/otsentry is mounted at /opt/otsentry — the host is untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from live_events import PCAPS, REPO

TOOLS = ("dpkg", "dpkg-deb", "dpkg-query", "systemd-analyze", "unshare", "useradd")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (dpkg --root, a private mount namespace)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    if not Path("/usr/bin/python3").exists():
        return "needs Debian's /usr/bin/python3"
    version = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return None if version == "True" else "the package targets Debian 12's Python 3.11"


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
DEPENDENCIES = ("python3", "adduser", "iproute2")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=kwargs.pop("timeout", 300), **kwargs)
    assert done.returncode == 0, f"{argv}: {done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    return done


def _clean_root(root: Path) -> None:
    admin = root / "var/lib/dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "available").touch()
    (admin / "status").write_text(_run(["dpkg-query", "-s", *DEPENDENCIES]).stdout)
    for name in DEPENDENCIES:
        (admin / "info" / f"{name}.list").touch()
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\n")


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(["dpkg", f"--root={root}", "--force-script-chrootless", *args])


def _in_namespace(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` where /opt/otsentry is the root's (a private mount namespace: the host keeps /opt)."""
    mount = (
        f"mount -t tmpfs tmpfs /opt && mkdir /opt/otsentry && "
        f"mount --bind {root}/opt/otsentry /opt/otsentry && "
    )
    return _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mount + script])


def _status(root: Path) -> str:
    done = subprocess.run(
        ["dpkg-query", f"--root={root}", "-W", "-f=${Status} ${Version}", "otsentry"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "not-installed"


def _user(root: Path) -> list[str] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.startswith("otsentry:"):
            return line.split(":")
    return None


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    done = _run([str(REPO / "packaging" / "build-deb.sh")], env={**os.environ, "OUT": str(out)}, timeout=600)
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.name.startswith("otsentry_") and deb.suffix == ".deb"
    return deb


@pytest.fixture(scope="module")
def installed(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    _clean_root(root)
    _dpkg(root, "-i", str(package))
    return root


def test_package_metadata(package: Path) -> None:
    info = _run(["dpkg-deb", "-f", str(package), "Package", "Version", "Architecture", "Depends"]).stdout
    assert "Package: otsentry" in info and "Depends: python3 (>= 3.11), python3 (<< 3.12)" in info
    files = _run(["dpkg-deb", "-c", str(package)]).stdout
    for path in (
        "./opt/otsentry/bin/otsentry",
        "./lib/systemd/system/otsentry.service",
        "./etc/otsentry/otsentry.toml",
        "./usr/share/otsentry/rules/modbus/modbus_write_unknown_client.yml",
        "./opt/otsentry/libexec/otsentry-prepare-capture",
        "./usr/share/doc/otsentry/INSTALL.md",
    ):
        assert path in files
    assert "/var/lib/otsentry" not in files  # the state directory belongs to the admin, not to dpkg
    assert _run(["dpkg-deb", "-I", str(package), "conffiles"]).stdout.strip() == "/etc/otsentry/otsentry.toml"


def test_install_creates_the_user_and_state_directory(installed: Path) -> None:
    assert _status(installed) == "install ok installed 0.1.0-1"
    user = _user(installed)
    assert user is not None and user[5] == "/var/lib/otsentry" and user[6] == "/usr/sbin/nologin"
    state = (installed / "var/lib/otsentry").stat()
    assert (state.st_uid, state.st_mode & 0o777) == (int(user[2]), 0o750)
    config = (installed / "etc/otsentry/otsentry.toml").stat()
    assert (config.st_uid, config.st_gid, config.st_mode & 0o777) == (0, int(user[3]), 0o640)
    assert os.readlink(installed / "usr/bin/otsentry") == "/opt/otsentry/bin/otsentry"
    head = (installed / "opt/otsentry/bin/otsentry").read_text().splitlines()[0]
    assert head == "#!/opt/otsentry/bin/python3"  # the venv was moved to where it lives
    assert str(installed) not in (installed / "opt/otsentry/pyvenv.cfg").read_text()


def test_unit_passes_systemd_analyze_verify(installed: Path) -> None:
    unit = installed / "lib/systemd/system/otsentry.service"
    done = _in_namespace(installed, f"systemd-analyze verify {unit}")
    assert done.stderr.strip() == ""
    text = unit.read_text()
    assert "AmbientCapabilities=CAP_NET_RAW\n" in text and "CapabilityBoundingSet=CAP_NET_RAW\n" in text
    for setting in (
        "ProtectSystem=strict",
        "StateDirectory=otsentry",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "ExecStartPre=+",
        "RestrictAddressFamilies=AF_PACKET AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "User=otsentry",
    ):
        assert setting in text
    assert "CAP_NET_ADMIN" not in text.replace("# ", "").split("[Service]")[1].split("ExecStartPre")[1]


def test_installed_sensor_runs(installed: Path, tmp_path: Path) -> None:
    version = _in_namespace(installed, "/opt/otsentry/bin/otsentry --version").stdout.strip()
    assert version == "otsentry, version 0.1.0"
    alerts = tmp_path / "alerts.jsonl"
    _in_namespace(
        installed,
        f"/opt/otsentry/bin/otsentry replay {PCAPS / 'modbus_suspicious.pcap'} "
        f"--rules {installed}/usr/share/otsentry/rules --alerts-out {alerts} --summary-json",
    )
    assert len(alerts.read_text().splitlines()) >= 3  # the packaged venv and rule pack detect
    commands = _in_namespace(installed, "/opt/otsentry/bin/otsentry --help").stdout
    assert "\n  run " in commands  # the unit's ExecStart
    check = _in_namespace(
        installed,
        f"/opt/otsentry/bin/otsentry run --config {installed}/etc/otsentry/otsentry.toml "
        "--interface eth9 --check",
    ).stdout
    assert '"compiled_filter"' in check and '"/usr/share/otsentry/rules"' in check


def test_upgrade_keeps_the_database_remove_keeps_it_purge_deletes_it(
    installed: Path, package: Path, tmp_path: Path
) -> None:
    db = installed / "var/lib/otsentry/otsentry.db"
    _in_namespace(
        installed,
        f"/opt/otsentry/bin/otsentry replay {PCAPS / 'modbus_polling.pcap'} --db {db} "
        "--no-detect --summary-json",
    )
    events = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert events > 100
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    config = installed / "etc/otsentry/otsentry.toml"
    config.write_text(config.read_text().replace('name = "otsentry"', 'name = "substation-7"'))

    unpacked = tmp_path / "v2"
    _run(["dpkg-deb", "-R", str(package), str(unpacked)])
    control = unpacked / "DEBIAN/control"
    control.write_text(control.read_text().replace("Version: 0.1.0-1", "Version: 0.1.0-2"))
    upgrade = tmp_path / "otsentry_0.1.0-2.deb"
    _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(unpacked), str(upgrade)])
    _dpkg(installed, "-i", str(upgrade))
    assert _status(installed) == "install ok installed 0.1.0-2"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert 'name = "substation-7"' in config.read_text()  # the admin's edit survives
    assert not config.with_suffix(".toml.dpkg-new").exists()

    _dpkg(installed, "-r", "otsentry")
    assert _status(installed).startswith("deinstall ok config-files")
    assert not (installed / "opt/otsentry").exists() and not (installed / "usr/bin/otsentry").exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest  # remove keeps /var/lib/otsentry
    assert _user(installed) is not None and config.exists()

    _dpkg(installed, "-P", "otsentry")
    assert _status(installed) == "not-installed"
    assert not (installed / "var/lib/otsentry").exists() and not (installed / "etc/otsentry").exists()
    assert _user(installed) is None
    assert "otsentry" not in (installed / "etc/group").read_text()
