#!/usr/bin/env bash
# Install etcd (Debian's etcd-server + etcd-client, 3.4.x on bookworm) as the
# yardstick for raftstore's benchmarks.
#
# - Idempotent: does nothing if `etcd` is already on PATH.
# - Non-interactive: runs as root with no terminal (DEBIAN_FRONTEND=noninteractive).
# - Leaves no etcd service running: the package's own service (which would
#   listen on 127.0.0.1:2379 with a data dir in /var/lib/etcd) is kept from
#   starting by a policy-rc.d for the duration of the install, and is then
#   stopped (if something started it anyway) and disabled. Only the `etcd`
#   service this install created is touched; since we only get here when no
#   etcd was installed, that service did not exist before.
#
# The benchmarks start their own 3-member clusters (benchmarks/etcd_cluster.py).
set -euo pipefail

if command -v etcd >/dev/null 2>&1; then
    echo "etcd already installed: $(command -v etcd) ($(etcd --version 2>/dev/null | head -n1 || true))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install-etcd.sh: must run as root (or with sudo)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive

# Keep maintainer scripts from starting the service. If a policy-rc.d already
# exists (containers usually ship one that denies everything) leave it alone;
# otherwise put a deny-all one in place and remove it when we are done.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
cleanup() {
    if [ "$OUR_POLICY" -eq 1 ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from raykube scripts/install-etcd.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    OUR_POLICY=1
fi

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends etcd-server etcd-client

# Belt and braces: if the package's service is running anyway, stop it
# (systemd if it is PID 1, else the SysV script), then disable it so it does
# not come up at the next boot either (`systemctl disable` works offline and
# also disables the SysV links), so nothing sits on 2379 or writes to
# /var/lib/etcd.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl stop etcd.service >/dev/null 2>&1 || true
elif [ -x /etc/init.d/etcd ]; then
    $SUDO /etc/init.d/etcd stop >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable etcd.service >/dev/null 2>&1 || true
elif command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/etcd ]; then
    $SUDO update-rc.d etcd disable >/dev/null 2>&1 || true
fi

echo "installed: $(command -v etcd)"
etcd --version | head -n1 || true
etcdctl version 2>/dev/null | head -n1 || true
