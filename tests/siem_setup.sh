#!/usr/bin/env bash
# Debian packages the SIEM forwarding tests need (tests/test_outputs_rsyslog.py, tests/test_forward_*.py):
#   rsyslog          the real syslog receiver the tests start on loopback (rsyslogd -n -f CONF -i PIDFILE)
#   rsyslog-relp     imrelp: RELP, the acknowledged syslog transport of the fault tests
#   rsyslog-gnutls   the gtls stream driver: syslog over TLS (RFC 5425)
#   openssl          test certificates (CA, server, client, rogue CA)
#   iproute2         ip netns / veth for the black-holed-link test
#   nftables         the black hole itself (drop, no RST) inside the test namespace
# Tested with Debian 12 (bookworm): rsyslog 8.2302.0-1+deb12u2 (and -relp, -gnutls of the same version).
# The packaged rsyslog service is not started (no systemd in CI); the tests run their own rsyslogd.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s rsyslog rsyslog-relp rsyslog-gnutls openssl iproute2 nftables >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
        rsyslog rsyslog-relp rsyslog-gnutls openssl iproute2 nftables >/dev/null
fi
echo "SIEM test receivers: $(rsyslogd -v | head -1)"
