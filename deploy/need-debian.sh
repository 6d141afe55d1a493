#!/usr/bin/env bash
# need-debian.sh WHAT PKG...: make sure Debian packages are installed before a target uses them.
# As root they are installed (apt-get); otherwise the one command that installs them is printed
# and the script exits 1 (no traceback further down). WHAT names the target in the message.
set -euo pipefail
what=$1
shift
missing=()
if ! command -v dpkg >/dev/null 2>&1; then
  echo "$what needs the Debian packages: $* (this system has no dpkg: install their equivalents)" >&2
  exit 1
fi
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "$what: installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  exit 0
fi
{
  echo "$what needs Debian packages that are not installed: ${missing[*]}"
  echo "install them with:"
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
} >&2
exit 1
