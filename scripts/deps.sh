#!/usr/bin/env bash
# Installs what building and testing ctl needs on Debian/Ubuntu (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(libmnl-dev pkg-config conntrack nftables iproute2 iputils-ping socat procps util-linux python3 time
          man-db groff-base mandoc bash-completion zsh fish dpkg-dev lintian binutils
          qemu-system-x86 busybox-static cpio kmod xz-utils)
# (the last line for make test-kernels: Debian's kernels under qemu)
# --list: the package list only (.ci/run installs it with apt-get itself).
# For the -o metrics and --interval tests: promtool (in prometheus) checks the
# metrics, tmux is the terminal the live view is watched in.
packages+=(prometheus tmux)
if [ "${1:-}" = --list ]; then
    echo "${packages[@]}"
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# pytest for the integration tests: the python3 on PATH may be a private one.
if ! python3 -c 'import pytest' 2>/dev/null; then
    python3 -m pip install -q pytest 2>/dev/null || {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq python3-pytest >/dev/null
    }
fi

# prometheus_client's text parser reads -o metrics in the tests (PyPI; Debian's
# python3-prometheus-client where pip cannot install).
if ! python3 -c 'import prometheus_client.parser' 2>/dev/null; then
    python3 -m pip install -q prometheus_client 2>/dev/null || {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq python3-prometheus-client >/dev/null
    }
fi

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
    echo "deps: no Swift toolchain found (expected swift on PATH or /opt/swift/usr/bin)" >&2
    exit 1
fi
