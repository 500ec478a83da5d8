"""-E -o timestamp with the kernel's event timestamp (CTA_TIMESTAMP_EVENT,
conntrack 1.4.9's behaviour): Linux 6.14 and later send it in every event
while net.netfilter.nf_conntrack_timestamp is 1.

The listeners are stopped (SIGSTOP) while an entry is made and continued
two seconds later: the kernel's timestamp is the time of the insert, the
local clock (conntrack 1.4.7, or ctl without the kernel's timestamp) the
time the event is read."""

import json
import os
import platform
import re
import signal
import subprocess
import time

import pytest

from conftest import CONNTRACK, CTL, Netns, run

pytestmark = pytest.mark.oracle_differs

DELAY = 2.0


def kernel_sends_event_timestamps():
    release = platform.release().split("-")[0].split(".")
    return tuple(int(x) for x in release[:2]) >= (6, 14)


def _subscribed(ns):
    n = 0
    for line in ns.exec(["cat", "/proc/net/netlink"]).stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 10 and f[1] == "12" and int(f[3], 16) != 0:
            n += 1
    return n


@pytest.fixture
def ns():
    n = Netns("event-timestamp")
    try:
        n.exec(["ip", "link", "set", "lo", "up"])
        yield n
    finally:
        n.destroy()


def delayed_events(ns, argvs, timestamping):
    """Starts each argv (-E listeners), stops them, inserts an entry,
    continues them DELAY seconds later; returns (insert start, insert end,
    [stdout of each])."""
    ns.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=%d" % timestamping])
    procs = [ns.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
    deadline = time.time() + 10
    while _subscribed(ns) < len(procs) and time.time() < deadline:
        time.sleep(0.02)
    assert _subscribed(ns) >= len(procs)
    for p in procs:
        os.kill(p.pid, signal.SIGSTOP)
    t0 = time.time()
    r = run(ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.3.3.1", "-d", "10.3.3.2", "--sport", "1",
                            "--dport", "2", "-t", "100"])
    t1 = time.time()
    assert r.rc == 0, r.show("conntrack")
    time.sleep(DELAY)
    for p in procs:
        os.kill(p.pid, signal.SIGCONT)
    time.sleep(0.5)
    outs = []
    for p in procs:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
        outs.append(out.decode())
    return t0, t1, outs


STAMP = re.compile(r"^\[(\d+)\.(\d{6})\]\t +\[NEW\] udp ")


def stamp(text):
    lines = text.splitlines()
    assert len(lines) == 1, text
    m = STAMP.match(lines[0])
    assert m, text
    return int(m.group(1)) + int(m.group(2)) / 1e6


def test_event_timestamp_is_the_kernels(ns):
    if not kernel_sends_event_timestamps():
        pytest.skip("kernel %s sends no CTA_TIMESTAMP_EVENT (Linux 6.14 and later do)" % platform.release())
    t0, t1, (ctl, ctl_json, oracle) = delayed_events(ns, [
        [CTL, "-E", "-o", "timestamp", "-e", "NEW"],
        [CTL, "-E", "-o", "json,timestamp", "-e", "NEW"],
        [CONNTRACK, "-E", "-o", "timestamp", "-e", "NEW"]], timestamping=1)
    # ctl: the time of the insert, to the microsecond the kernel gave
    assert t0 - 0.01 <= stamp(ctl) <= t1 + 0.01, (t0, t1, ctl)
    obj = json.loads(ctl_json)
    assert obj["event"] == "new" and abs(obj["time"] - stamp(ctl)) < 1e-6, ctl_json
    # conntrack 1.4.7: the time it read the event (the deliberate difference)
    assert stamp(oracle) >= t1 + DELAY - 0.1, (t1, oracle)
    # the rest of the line is conntrack's
    assert ctl.split("\t", 1)[1] == oracle.split("\t", 1)[1]


def test_local_clock_without_the_kernels_timestamp(ns):
    """nf_conntrack_timestamp=0: no event timestamp is sent; ctl prints the
    local clock as conntrack does."""
    t0, t1, (ctl, oracle) = delayed_events(ns, [
        [CTL, "-E", "-o", "timestamp", "-e", "NEW"],
        [CONNTRACK, "-E", "-o", "timestamp", "-e", "NEW"]], timestamping=0)
    assert stamp(ctl) >= t1 + DELAY - 0.1, (t1, ctl)
    assert abs(stamp(ctl) - stamp(oracle)) < 0.5
