"""Kernel features ctl uses, each one missing (issue 8): the fallback path
must give the same result.

This kernel has every feature, so each fallback is forced:
  * the dump filters ctl hands the kernel (nfgen_family, CTA_MARK,
    CTA_STATUS, CTA_FILTER) are switched off one by one with
    CTL_KERNEL_LACKS=family|mark|status|tuple, then all together, and with
    CTL_NO_KERNEL_FILTER=1; ctl's listing must still be conntrack's (the
    userspace check alone selects), and every selector selects something
    in the shared namespace; -D without them:
    test_delete_get.py (test_delete_without_kernel_filter); -E without its
    socket filter: test_events.py (CTL_NO_KERNEL_FILTER=1 covers `socket`);
  * ctnetlink's statistics messages (CTL_KERNEL_LACKS=stats): -S, -C and
    -S expect must fall back to /proc exactly as conntrack does when the
    kernel refuses them; conntrack is made to take its fallback by running
    it without CAP_NET_ADMIN, where the kernel refuses it too;
  * a flush of one family (CTL_KERNEL_LACKS=family-flush, kernels before
    5.0): -F -f must refuse and leave the table alone;
  * labels: a namespace where nothing uses connection labels has no label
    extension on its entries, for real (the kernel counts label users per
    namespace); every label command is compared with conntrack there;
  * zones: a kernel without zone support sends no CTA_ZONE, which is
    exactly what this kernel sends for zone 0; zone selectors on a table of
    zone-0 entries are compared with conntrack.
"""

import re

import pytest

from conftest import CONNTRACK, CTL, Netns, _diff_results, compare, run
from test_args import UNPRIV

# ctl-only behaviour: skipped when CTL is conntrack itself.
pytestmark = pytest.mark.oracle_differs

_ID_RE = re.compile(r" id=\d+|<id>\d+</id>")

LACKING_FILTERS = [
    pytest.param({"CTL_KERNEL_LACKS": lacks}, id=lacks)
    for lacks in ["family", "mark", "status", "tuple", "zone", "family,mark,status,tuple,zone"]
] + [pytest.param({"CTL_NO_KERNEL_FILTER": "1"}, id="CTL_NO_KERNEL_FILTER")]

SELECTORS = [
    ["-L", "-s", "10.10.0.0/16"], ["-L", "-d", "fd00::/16"], ["-L", "-s", "127.0.0.1"],
    ["-L", "-s", "127.0.0.1", "-p", "tcp"], ["-L", "-f", "ipv4", "-d", "127.0.0.1"],
    ["-L", "-p", "tcp", "--dport", "80"], ["-L", "-p", "udp", "--dport", "5399"],
    ["-L", "-r", "10.99.0.2"], ["-L", "-m", "42"], ["-L", "-m", "7/7"],
    ["-L", "-u", "ASSURED"], ["-L", "-u", "SEEN_REPLY,ASSURED"], ["-L", "-f", "ipv6"],
    ["-L", "-f", "ipv6", "-p", "udp"], ["-L", "-p", "icmp", "--icmp-type", "8"],
    ["-L", "-p", "icmp", "--icmp-id", "77"], ["-L", "-w", "7"], ["-L", "--orig-zone", "11"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.0.255.0"],
    ["-L", "-o", "xml", "-p", "tcp"], ["-C"],
]


def _id(args):
    return " ".join(args)


@pytest.mark.parametrize("env", LACKING_FILTERS)
@pytest.mark.parametrize("args", SELECTORS, ids=_id)
def test_listing_without_each_dump_filter(popns, args, env):
    o, c = compare(popns, args, env=env)
    assert c.stdout, c.show("ctl")


# ------------------------------------------------------------ statistics

@pytest.fixture(scope="module")
def quiet_ns():
    """No traffic and no rules: /proc's statistics stay put."""
    ns = Netns("fallback-quiet")
    try:
        ns.exec(["ip", "link", "set", "lo", "up"])
        for i in range(3):
            r = run(ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.7.0.%d" % (i + 1), "-d", "10.7.1.1",
                                    "--sport", "1", "--dport", "2", "-t", "3000"])
            assert r.rc == 0, r.show("conntrack -I")
        yield ns
    finally:
        ns.destroy()


@pytest.mark.parametrize("args", [["-S"], ["-C"], ["-S", "expect"]], ids=_id)
def test_statistics_fall_back_to_proc(quiet_ns, args):
    """ctl with ctnetlink's statistics refused prints what conntrack prints
    when the kernel refuses them (its /proc values), then the failure."""
    o = run(quiet_ns, CONNTRACK, args, wrapper=UNPRIV)
    c = run(quiet_ns, CTL, args, env={"CTL_KERNEL_LACKS": "stats"})
    assert o.rc == 1 and c.rc == 1, o.show("conntrack") + c.show("ctl")
    assert o.stdout and c.stdout == o.stdout, o.show("conntrack") + c.show("ctl")
    assert c.stderr.splitlines()[-1].endswith("Operation failed: Operation not supported"), c.show("ctl")
    # Without the override ctl asks the kernel.
    plain = run(quiet_ns, CTL, args)
    assert plain.rc == 0 and plain.stderr == "", plain.show("ctl")


def test_family_flush_refused(quiet_ns):
    before = run(quiet_ns, CONNTRACK, ["-L"])
    c = run(quiet_ns, CTL, ["-F", "-f", "ipv4"], env={"CTL_KERNEL_LACKS": "family-flush"})
    assert c.rc == 1 and c.stdout == "", c.show("ctl")
    assert c.stderr.strip().endswith(
        "flushing one family needs Linux 5.0 or later; this kernel would flush every family"), c.show("ctl")
    after = run(quiet_ns, CONNTRACK, ["-L"])
    assert len(after.stdout.splitlines()) == len(before.stdout.splitlines()) == 3


# ------------------------------------------------------------ labels

ENTRY = ["-p", "tcp", "-d", "10.8.0.9", "--sport", "1", "--dport", "2", "--state", "ESTABLISHED",
         "-t", "500"]
LABEL_STEPS = [
    ["-I", "-s", "10.8.0.1"] + ENTRY + ["--label-add", "ctl-one"],
    ["-I", "-s", "10.8.0.2"] + ENTRY,
    ["-U", "-s", "10.8.0.2", "--label-add", "ctl-zero"],
    ["-L", "-o", "labels"],
    ["-L", "-o", "xml,labels"],
    ["-L", "-l", "ctl-one"],
    ["-G", "-s", "10.8.0.1"] + ENTRY[:8] + ["-o", "labels"],
    ["-U", "-s", "10.8.0.2", "--label-del"],
    ["-U", "-s", "10.8.0.1", "--label-del", "ctl-one"],
    ["-D", "-l", "ctl-one"],
    ["-E", "-l", "ctl-one", "-e", "NEW"],
    ["-L"],
]


def _labels_in_use(ns):
    """Whether entries of `ns` get the label extension (a created entry
    with a label keeps it)."""
    run(ns, CONNTRACK, ["-I", "-s", "10.8.9.9"] + ENTRY + ["--label-add", "ctl-one"])
    r = run(ns, CONNTRACK, ["-L", "-s", "10.8.9.9", "-o", "labels"])
    run(ns, CONNTRACK, ["-D", "-s", "10.8.9.9"])
    return "ctl-one" in r.stdout


def test_labels_unused_in_the_namespace(labelmap):
    """Step by step, conntrack in one namespace and ctl in its twin, where
    no rule uses labels: -I keeps no label, -U --label-add fails with the
    kernel's ENOSPC, -l selects nothing, -o labels prints none."""
    labelmap.skip_unless_intact()
    a, b = Netns("fallback-labels-a"), Netns("fallback-labels-b")
    try:
        for ns in (a, b):
            ns.exec(["ip", "link", "set", "lo", "up"])
        if _labels_in_use(a):
            pytest.skip("this kernel gives every entry the label extension; "
                        "no namespace without labels to compare in")
        for step in LABEL_STEPS:
            if step[0] == "-E":
                # Nothing to wait for: both listen briefly and are stopped.
                stop = ["timeout", "--preserve-status", "-s", "INT", "1"]
                o = run(a, CONNTRACK, step, wrapper=stop)
                c = run(b, CTL, step, wrapper=stop)
            else:
                o = run(a, CONNTRACK, step)
                c = run(b, CTL, step)
            # Twin namespaces: the entries' ids differ.
            o, c = (r._replace(stdout=_ID_RE.sub("", r.stdout)) for r in (o, c))
            problems = _diff_results(o, c, "listing", 2)
            assert not problems, "%r:\n%s\n%s%s" % (step, "\n".join(problems),
                                                    o.show("conntrack"), c.show("ctl"))
            assert "labels=" not in c.stdout and "<labels>" not in c.stdout, c.show("ctl")
    finally:
        a.destroy()
        b.destroy()


# ------------------------------------------------------------ zones

@pytest.mark.parametrize("args", [
    ["-L", "-w", "0"], ["-L", "-w", "3"], ["-L", "--orig-zone", "0"], ["-L", "--reply-zone", "0"],
    ["-L", "--orig-zone", "3"], ["-L", "-w", "0", "-o", "xml"], ["-L", "-o", "extended"],
    ["-G", "-p", "udp", "-s", "10.7.0.1", "-d", "10.7.1.1", "--sport", "1", "--dport", "2", "-w", "0"],
    ["-G", "-p", "udp", "-s", "10.7.0.1", "-d", "10.7.1.1", "--sport", "1", "--dport", "2", "-w", "3"],
], ids=_id)
def test_entries_without_zone_attributes(quiet_ns, args):
    """Entries of zone 0 come without CTA_ZONE, as every entry would from a
    kernel built without zones: zone selectors treat them as conntrack does."""
    o, c = compare(quiet_ns, args)
    assert "zone=" not in c.stdout
