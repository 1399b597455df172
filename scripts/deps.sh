#!/usr/bin/env bash
# Installs (idempotently) the Debian packages Kizuki's build, tests and benchmarks need.
# Skips apt entirely when everything is already present. Run as root (CI does).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/sbin:/sbin"

# "probe package" pairs: probe is a command name, an absolute path, or dpkg:<package>.
checks=(
  "dpkg:libpcap-dev libpcap-dev"
  "dpkg:zlib1g-dev zlib1g-dev"
  "pkg-config pkg-config"
  "tcpdump tcpdump"
  "softflowd softflowd"
  "dig dnsutils"
  "dnsmasq dnsmasq-base"
  "curl curl"
  "openssl openssl"
  "python3 python3"
  "tshark tshark"
  "capinfos wireshark-common"
  "/usr/bin/time time"
  "promtool prometheus"
  "/usr/bin/prometheus-alertmanager prometheus-alertmanager"
  "swaks swaks"
  "zip zip"
  "7z p7zip-full"
  "dpkg:python3-aiosmtpd python3-aiosmtpd"
)

present() {
  case "$1" in
    dpkg:*) dpkg-query -W -f='${Status}' "${1#dpkg:}" 2>/dev/null | grep -q 'install ok installed' ;;
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for c in "${checks[@]}"; do
  probe=${c%% *}
  pkg=${c##* }
  present "$probe" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: error: need root to apt-get install ${missing[*]}" >&2
  exit 1
fi

# Never let a package's postinst start a daemon (prometheus, dnsmasq) on this machine.
cleanup_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  cleanup_policy=1
fi
trap 'if [ "$cleanup_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT

# tshark asks whether non-root users may capture; answer it up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true

apt-get update -q
apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}"

still=()
for c in "${checks[@]}"; do
  probe=${c%% *}
  present "$probe" || still+=("${c##* }")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "deps: error: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "deps: ok"
