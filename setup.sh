#!/usr/bin/env bash
# Installs everything otsentry and its tests need on Debian 12: system tools, then a venv in .venv.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# tshark: the Wireshark dissectors our tests compare against; libpcap: capture; graphviz: maps;
# chromium: the browser the console's end-to-end tests drive (no browser download);
# tcpdump, iproute2, systemd: the live-capture, namespace and unit-verification tests.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    python3-venv python3-dev gcc libpcap0.8 libpcap-dev tshark wireshark-common tcpreplay graphviz chromium fonts-dejavu-core \
    tcpdump iproute2 ethtool systemd >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "otsentry installed: $(.venv/bin/otsentry --version)"
