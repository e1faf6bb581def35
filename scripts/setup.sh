#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu, as root) to run the load balancer and its lab.
# Idempotent: run it again at any time; it only does what is missing.
#   scripts/setup.sh             system packages, Open vSwitch running, .venv (os-ken)
#   scripts/setup.sh --with-ryu  also .venv-ryu with Ryu 4.34 (the tests use both frameworks)
set -euo pipefail
cd "$(dirname "$0")/.."

with_ryu=0
for arg in "$@"; do
  case "$arg" in
    --with-ryu) with_ryu=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
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

step "Open vSwitch"
if ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
  echo "running"
else
  # No systemd in containers: the service script works with or without it.
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 | grep -v "ulimit" || true
  ovs-vsctl --timeout=10 show >/dev/null
  echo "started"
fi

quiet_pip() {  # dir pip-install-args...; with pipefail, a pip failure still fails the script
  local dir=$1; shift
  "$dir/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
}

# A venv is rebuilt only when its requirements file changed.
make_venv() {  # dir requirements-file [pip options...]
  local dir=$1 req=$2; shift 2
  local stamp="$dir/.requirements.sha256"
  if [ -f "$stamp" ] && sha256sum --quiet -c "$stamp" >/dev/null 2>&1; then
    echo "$dir up to date"; return
  fi
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  quiet_pip "$dir" --upgrade pip "$@"
  PBR_VERSION=4.34 quiet_pip "$dir" ${PIP_EXTRA:-} -r "$req"
  "$dir/bin/pip" check >/dev/null 2>&1 || "$dir/bin/pip" check
  sha256sum "$req" > "$stamp"
  echo "$dir ready"
}

step "Python environment (.venv: os-ken, Mininet API, tests)"
make_venv .venv requirements.txt

if [ $with_ryu = 1 ]; then
  step "Python environment (.venv-ryu: Ryu 4.34)"
  # Ryu's sdist needs an old setuptools and no build isolation.
  PIP_EXTRA="--no-build-isolation" make_venv .venv-ryu requirements-ryu.txt "setuptools<58" wheel
fi

step "what this kernel offers"
.venv/bin/python -c 'from topologies.build import capabilities; print(capabilities().describe())'
echo
echo "setup done"
