#!/bin/sh
# Build dist/otsentry_<version>-<revision>_<arch>.deb: the sensor in its own virtual environment under
# /opt/otsentry (built with Debian's /usr/bin/python3, which it links to), the systemd unit, the default
# config (a conffile), the bundled Sigma rules and the maintainer scripts.
#
#   packaging/build-deb.sh                 # -> dist/
#   OUT=/tmp/pkg DEB_REVISION=2 packaging/build-deb.sh
#   PIP_ARGS="--no-index --find-links /srv/wheels" packaging/build-deb.sh   # offline build
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OUT=${OUT:-$REPO/dist}
PYTHON=${PYTHON:-/usr/bin/python3}
PREFIX=/opt/otsentry
VERSION=${VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/src/otsentry/__init__.py")}
DEB_REVISION=${DEB_REVISION:-1}
ARCH=$(dpkg --print-architecture)

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "build-deb.sh: $PYTHON is not Python 3.11 (Debian 12's python3)" >&2; exit 1; }

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
VENV=$ROOT$PREFIX

# The virtual environment, built where it will not live, then pointed at $PREFIX: venvs write their own
# path into script shebangs, activate scripts and pyvenv.cfg.
"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet --no-compile --disable-pip-version-check ${PIP_ARGS:-} "$REPO"
grep -rlI "$VENV" "$VENV" | while read -r file; do sed -i "s|$VENV|$PREFIX|g" "$file"; done
find "$VENV" -name __pycache__ -type d -prune -exec rm -rf {} +

install -D -m 0755 "$HERE/otsentry-prepare-capture" "$VENV/libexec/otsentry-prepare-capture"
install -D -m 0644 "$HERE/otsentry.service" "$ROOT/lib/systemd/system/otsentry.service"
install -D -m 0640 "$HERE/otsentry.toml" "$ROOT/etc/otsentry/otsentry.toml"
mkdir -p "$ROOT/usr/bin" "$ROOT/usr/share/otsentry"
ln -s "$PREFIX/bin/otsentry" "$ROOT/usr/bin/otsentry"
cp -r "$REPO/rules" "$ROOT/usr/share/otsentry/rules"
install -D -m 0644 "$HERE/INSTALL.md" "$ROOT/usr/share/doc/otsentry/INSTALL.md"
cat > "$ROOT/usr/share/doc/otsentry/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: otsentry
License: Apache-2.0
 The third-party Python packages under $PREFIX/lib carry their own licences in their .dist-info folders.
COPYRIGHT

mkdir -p "$ROOT/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION-$DEB_REVISION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
    "$HERE/debian/control.in" > "$ROOT/DEBIAN/control"
install -m 0644 "$HERE/debian/conffiles" "$ROOT/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$script" "$ROOT/DEBIAN/$script"
done

mkdir -p "$OUT"
DEB="$OUT/otsentry_${VERSION}-${DEB_REVISION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
