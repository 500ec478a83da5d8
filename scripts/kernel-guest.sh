#!/bin/bash
# PID 1 inside a test-kernels guest (scripts/test-kernels.sh boots it): this
# machine's root read-only with a tmpfs overlay, the kernel's modules at
# /lib/modules, /ctl-results shared with the host. Runs the kernel-sensitive
# tests, writes their exit code and summary line there, powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
# /tmp stays the overlay's (writable, in the tmpfs upper layer): a tmpfs
# over it would hide a checkout under /tmp, where CI may clone the project.
ip link set lo up
hostname ctl-kernel-guest
# The suite writes its own label map; the host's (or one a concurrent host
# run made) is hidden in the guest's overlay only, the host keeps its file.
rm -f /etc/xtables/connlabel.conf

OUT=/ctl-results
# shellcheck source=/dev/null
. "$OUT/guest-env"
finish() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 30
}
trap finish EXIT

echo "guest: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2 / 1024 " MiB"}' /proc/meminfo)"
modprobe nf_conntrack 2>/dev/null
modprobe nf_conntrack_netlink 2>/dev/null

# KernelProbe's answers (ctl-capture --probe, in a namespace of its own)
# against the version gate they could replace: the status dump filter
# came with 5.15.
probe_problem=
capture=$(dirname "$CTL")/ctl-capture
if [ -x "$capture" ]; then
    ip netns add ctlprobe
    answer=$(ip netns exec ctlprobe "$capture" --probe)
    ip netns del ctlprobe
    IFS=.- read -r major minor _ <<< "$(uname -r)"
    expected=no
    if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 15 ]; }; then expected=yes; fi
    echo "guest: probe $answer (version gate: $expected)"
    [ "$answer" = "status-dump-filter $expected" ] || probe_problem="; probe $answer against the version's $expected"
fi

# Tests that compare timing allow for emulation (about 8x slower process starts).
export CTLTEST_EMULATED=1 CTL PYTHONUNBUFFERED=1
cd "$REPO" || exit 1
if [ -n "$KERNEL_TESTS" ]; then
    read -r -a args <<< "$KERNEL_TESTS"
else
    list=${KERNEL_LIST:-scripts/kernel-tests.txt}
    case $list in /*) ;; *) list=$REPO/$list ;; esac
    export CTLTEST_SELECT=$list
    args=(Tests/integration)
fi
start=$(date +%s)
"$PYTHON" -m pytest -v -p no:cacheprovider -rfE --durations=10 \
    --junitxml="$OUT/junit.xml" "${args[@]}" 2>&1 | tee "$OUT/pytest.log"
rc=${PIPESTATUS[0]}
took=$(( $(date +%s) - start ))
[ -n "$probe_problem" ] && [ "$rc" = 0 ] && rc=1
echo "$rc" > "$OUT/rc"
summary=$(grep -E '[0-9]+ (passed|failed|errors?|skipped)|no tests ran' "$OUT/pytest.log" | tail -n 1 | sed 's/^=* //; s/ =*$//')
echo "${summary:-pytest exit $rc} (tests ${took}s)$probe_problem" > "$OUT/summary"
