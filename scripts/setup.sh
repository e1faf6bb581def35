#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu, as root) to run the load balancer and its lab.
# Idempotent: run it again at any time; it only does what is missing.
#   scripts/setup.sh             system packages, Open vSwitch running, .venv (os-ken)
#   scripts/setup.sh --with-ryu  also .venv-ryu with Ryu 4.34 (the tests use both frameworks)
# Python packages come from locks/, hash-checked (scripts/make-venv; scripts/lock writes them).
set -euo pipefail
cd "$(dirname "$0")/.."

with_ryu=0
for arg in "$@"; do
  case "$arg" in
    --with-ryu) with_ryu=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (sudo $0), Mininet and Open vSwitch need it" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "setup.sh: needs a Debian or Ubuntu machine (apt-get)" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "system packages"
packages=(mininet python3-networkx openvswitch-switch iperf3 iperf ethtool iputils-ping net-tools iproute2 kmod
          python3 python3-venv python3-dev procps)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "all present"
fi
# chromium and chromium-driver (Debian's names): the web page's test drives a real headless
# browser. Where apt cannot install them (Ubuntu ships chromium as a snap) the lab is still set
# up, and the browser test says what is missing.
if ! dpkg-query -W -f='${Status}' chromium-driver 2>/dev/null | grep -q "install ok installed"; then
  { [ ${#missing[@]} -gt 0 ] || apt-get update -qq; } &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null ||
    echo "setup.sh: could not install chromium and chromium-driver: the web page's browser test will not run" >&2
fi

step "Open vSwitch"
if ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
  echo "running"
else
  # No systemd in containers: the service script works with or without it.
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 | grep -v "ulimit" || true
  ovs-vsctl --timeout=10 show >/dev/null
  echo "started"
fi

venv() {  # name description [setup option to retry with]
  step "Python environment ($2)"
  scripts/make-venv "$1" || {
    echo "setup.sh: $2 was not built; any previous one is untouched. Retry: sudo scripts/setup.sh${3:-}" >&2
    exit 1
  }
}
venv main ".venv: os-ken, Mininet API, tests"
[ $with_ryu = 0 ] || venv ryu ".venv-ryu: Ryu 4.34" " --with-ryu"

step "what this kernel offers"
.venv/bin/python -c 'from topologies.build import capabilities; print(capabilities().describe())'
echo
echo "setup done"
