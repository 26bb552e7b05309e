#!/usr/bin/env bash
# Installs the Debian 12 packages rcptguard needs. Usage:
#   scripts/deps.sh build        packages to build and run
#   scripts/deps.sh test         also what the test suite needs
# Daemons that packages would start (slapd, postfix, prometheus) are kept
# from starting: tests run private instances of their own.
set -euo pipefail
cd "$(dirname "$0")/.."

lists=(deploy/packages-build.txt)
if [[ "${1:-build}" == "test" ]]; then lists+=(deploy/packages-test.txt); fi
mapfile -t wanted < <(cat "${lists[@]}" | sed -e 's/#.*//' -e '/^\s*$/d')
# Node.js runs Haraka and its plugin in the tests: Debian's nodejs and npm,
# only when no node is installed (a machine may carry another packaging of
# Node, e.g. NodeSource's nodejs, which bundles npm and conflicts with
# Debian's npm).
if [[ "${1:-build}" == "test" ]] && ! command -v node >/dev/null; then
  wanted+=(nodejs npm)
fi

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#wanted[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}"
# Keep package scripts from starting system daemons we never use.
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
