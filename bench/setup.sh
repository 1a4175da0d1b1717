#!/usr/bin/env bash
# Installs the bench's peers on Debian 12: tshark/capinfos (bookworm) and Suricata 7 (bookworm-backports;
# bookworm itself ships Suricata 6, whose DNP3/Modbus logging differs).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
BACKPORTS=/etc/apt/sources.list.d/backports.sources
if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee "$BACKPORTS" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tshark wireshark-common >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports suricata >/dev/null
echo "tshark:   $(tshark --version | head -1)"
echo "suricata: $(suricata -V)"
