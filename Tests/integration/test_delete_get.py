"""-G (get one entry) and -D (delete selected entries): ctl against
conntrack 1.4.7.

-G runs on the shared populated namespace (read-only).  Every -D case runs
on two freshly and identically populated namespaces, conntrack in one and
ctl in the other; the printed entries, the summary line and the exit code
must match, and so must both tables afterwards.  Real-traffic entries carry
ephemeral client ports (and ids) that differ between two namespaces; those
are masked before comparing (see _mask_ephemeral).

"No over-deletion" tests check ctl alone: every entry that conntrack -L
would not select with the same selector must survive ctl -D.  They run
twice, the second time with CTL_NO_KERNEL_FILTER=1 in ctl's environment
(ctl then filters everything in userspace instead of asking the kernel).

Observed -D behaviour (conntrack 1.4.7): the selection is that of -L with
the same selectors, except -u (see test_selectors / the semantics notes);
each deleted entry is printed like -L prints it, but without ktimestamp
and labels, -o xml prints only the <flow> lines and -o save prints
"-D -t ..."; stderr ends with "N flow entries have been deleted."; exit 1
when nothing was deleted.
"""

import concurrent.futures
import subprocess
import re

import pytest

from conftest import (CONNTRACK, CTL, _diff_results, _listing_diff, compare,
                      normalize_listing, normalize_stderr, run)


def _id(args):
    return " ".join(a if a else "''" for a in args)


NO_KFILTER = {"CTL_NO_KERNEL_FILTER": "1"}
KFILTER_MODES = [pytest.param(None, id="kernel-filter"),
                 pytest.param(NO_KFILTER, id="CTL_NO_KERNEL_FILTER")]

# ---------------------------------------------------------------- helpers

# Ports the kernel picks for the real-traffic clients (default
# ip_local_port_range); 36412 is the fixed SCTP port of inserted entries.
_EPH_LO, _EPH_HI, _EPH_KEEP = 32768, 60999, {36412}
_PORT_RE = re.compile(
    r"(?:(?<=sport=)|(?<=dport=)|(?<=<sport>)|(?<=<dport>)"
    r"|(?<=--sport )|(?<=--dport )|(?<=--reply-port-src )"
    r"|(?<=--reply-port-dst ))(\d+)")
_ID_RE = re.compile(r" id=\d+|<id>\d+</id>")


def _mask_ephemeral(text):
    def sub(m):
        v = int(m.group(1))
        if _EPH_LO <= v <= _EPH_HI and v not in _EPH_KEEP:
            return "EPH"
        return m.group(1)

    def line(l):
        # 36412 is kept only on sctp lines: a real tcp/udp client may get it
        # as its ephemeral port too.
        if "sctp" in l:
            return _PORT_RE.sub(sub, l)
        return _PORT_RE.sub(lambda m: "EPH" if _EPH_LO <= int(m.group(1)) <= _EPH_HI
                            else m.group(1), l)
    return _ID_RE.sub("", "\n".join(line(l) for l in text.split("\n")))


def _masked(res):
    return res._replace(stdout=_mask_ephemeral(res.stdout))


def _fail(msg, *results):
    pytest.fail(msg + "\n\n" + "\n".join(r.show(l) for l, r in results),
                pytrace=False)


def _table(ns, extra=()):
    r = run(ns, CONNTRACK, ["-L", "-o", "extended"] + list(extra))
    assert r.rc == 0, r.show("conntrack -L")
    return r


def _fresh_pair(make_ns):
    # populate both at the same time (it is mostly waiting for subprocesses)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        ns_o, ns_c = [f.result() for f in [pool.submit(make_ns),
                                           pool.submit(make_ns)]]
    n_o = int(run(ns_o, CONNTRACK, ["-C"]).stdout)
    n_c = int(run(ns_c, CONNTRACK, ["-C"]).stdout)
    assert n_o > 50 and n_o == n_c, \
        "the two fresh namespaces differ: %d vs %d entries" % (n_o, n_c)
    return ns_o, ns_c


def delete_pair(make_ns, args, env=None, labels=None):
    """Run conntrack ``args`` in one fresh namespace and ctl in an identical
    other one; compare outputs and the remaining tables."""
    if labels is not None:
        labels.skip_unless_intact()
    ns_o, ns_c = _fresh_pair(make_ns)
    c = run(ns_c, CTL, args, env=env)
    o = run(ns_o, CONNTRACK, args)
    problems = _diff_results(_masked(o), _masked(c), "listing", 2)
    if problems:
        _fail("ctl %r differs from conntrack:\n%s" % (args, "\n\n".join(problems)),
              ("conntrack", o), ("ctl", c))
    after_o, after_c = _table(ns_o), _table(ns_c)
    d = _listing_diff(_mask_ephemeral(after_o.stdout),
                      _mask_ephemeral(after_c.stdout), 2)
    if d:
        _fail("tables differ after %r:\n%s" % (args, d),
              ("conntrack -D", o), ("ctl -D", c))
    return o, c


# ---------------------------------------------------------------- -D pairs

DELETE_CASES = [
    ["-D", "-s", "10.10.0.1"],
    ["-D", "-s", "10.10.0.0/16"],
    ["-D", "-d", "10.10.0.0/24", "-o", "extended"],
    ["-D", "-s", "fd00::/16"],
    ["-D", "-s", "::1"],
    ["-D", "-d", "fd00::1"],
    ["-D", "-s", "10.10.0.9", "--mask-src", "255.255.0.0"],
    ["-D", "-s", "10.10.0.9", "--mask-src", "255.0.255.0"],
    ["-D", "-r", "10.99.0.2"],
    ["-D", "-q", "10.99.0.1"],
    ["-D", "-f", "ipv6"],
    ["-D", "-f", "ipv4", "-p", "udp"],
    ["-D", "-p", "tcp", "--dport", "80"],
    ["-D", "-p", "tcp", "--reply-port-src", "8081"],
    ["-D", "-p", "tcp", "--orig-port-dst", "8080"],
    ["-D", "-p", "tcp", "--state", "ESTABLISHED"],
    ["-D", "-p", "tcp", "--state", "TIME_WAIT"],
    ["-D", "-p", "sctp", "--state", "CLOSED"],
    ["-D", "-p", "icmp", "--icmp-type", "8"],
    ["-D", "-p", "icmpv6"],
    ["-D", "-p", "gre", "--srckey", "0x10"],      # keys ignored: both gre
    ["-D", "-p", "200"],
    ["-D", "-m", "42"],
    ["-D", "-m", "7/7"],
    ["-D", "-m", "0/0xff", "-f", "ipv6"],
    ["-D", "-u", "ASSURED"],
    ["-D", "-u", "ASSURED,SEEN_REPLY"],
    ["-D", "-u", "ASSURED", "-u", "SEEN_REPLY"],  # -D: AND (-L lists none)
    ["-D", "-u", "UNSET", "-p", "udp"],           # -D: no status condition
    ["-D", "-m", "0x4/0x4", "-u", "ASSURED"],     # -m/-u order quirk
    ["-D", "-m", "0/0", "-u", "ASSURED"],         # ... deletes nothing
    ["-D", "-w", "7"],
    ["-D", "-w", "0", "-p", "tcp", "--dport", "25"],
    ["-D", "--orig-zone", "11"],
    ["-D", "--reply-zone", "12"],
    ["-D", "-n"],
    ["-D", "-g"],
    ["-D", "-n", "10.99.0.3"],
    ["-D", "-g", "10.99.0.2:8081"],
    ["-D", "-g", "fd00::2"],
    ["-D", "-s", "127.0.0.1", "-p", "tcp", "--dport", "5003", "-m", "42"],
    ["-D", "-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport",
     "1003", "--dport", "80"],                  # a full tuple
    ["-D", "-p", "udp", "--sport", "53", "-o", "xml"],
    ["-D", "-p", "gre", "-o", "save"],
    ["-D", "-p", "gre", "-o", "extended,ktimestamp,labels,id"],
    ["-D", "-p", "tcp", "--dport", "5004", "-o", "labels"],
    ["-D", "-p", "tcp", "--dport", "5003", "-o", "id,timestamp,userspace"],
    ["-D", "-s", "1.2.3.4"],                    # nothing: exit 1
    ["-D", "-p", "tcp", "--dport", "25", "-t", "5"],   # -t filters: nothing
    ["-D", "-p", "dccp", "--sport", "0"],       # generic entry: nothing
    ["-D"],                                     # everything
    ["--delete", "-p", "udplite"],
]


@pytest.mark.parametrize("args", DELETE_CASES, ids=_id)
def test_delete(make_ns, args):
    delete_pair(make_ns, args)


DELETE_LABEL_CASES = [
    ["-D", "-l", "ctl-one"],
    ["-D", "-l", "ctl-one,ctl-five"],
    ["-D", "-l", "ctl-one", "-l", "ctl-last", "-o", "extended"],
    ["-D", "-l", "ctl-zero", "-f", "ipv6"],
]


@pytest.mark.parametrize("args", DELETE_LABEL_CASES, ids=_id)
def test_delete_labels(make_ns, labelmap, args):
    delete_pair(make_ns, args, labels=labelmap)


@pytest.mark.parametrize("env", [
    pytest.param(NO_KFILTER, id="CTL_NO_KERNEL_FILTER"),
    pytest.param({"CTL_KERNEL_LACKS": "tuple"}, id="lacks-tuple"),
    pytest.param({"CTL_KERNEL_LACKS": "mark,status"}, id="lacks-mark-status"),
    pytest.param({"CTL_KERNEL_LACKS": "family"}, id="lacks-family"),
])
@pytest.mark.parametrize("args", [
    ["-D", "-s", "10.10.0.0/16", "-p", "tcp"],
    ["-D", "-u", "ASSURED", "-u", "SEEN_REPLY"],
    ["-D", "-m", "42"],
    ["-D", "-n"],
], ids=_id)
def test_delete_without_kernel_filter(make_ns, args, env):
    """The same comparison with ctl's kernel-side filters switched off, all
    at once and one by one (CTL_KERNEL_LACKS; see test_fallbacks.py)."""
    delete_pair(make_ns, args, env=env)


# ---------------------------------------------------------------- no over-deletion

# selectors for which conntrack -D deletes exactly what conntrack -L lists
NO_OVERDELETE_CASES = [
    ["-s", "10.10.0.0/16"],
    ["-d", "fd00::/16"],
    ["-s", "10.10.0.9", "--mask-src", "255.0.255.0"],
    ["-r", "10.99.0.2"],
    ["-f", "ipv6", "-p", "udp"],
    ["-p", "tcp", "--dport", "80"],
    ["-p", "tcp", "--reply-port-dst", "5001"],
    ["-p", "tcp", "--state", "TIME_WAIT"],
    ["-p", "icmp", "--icmp-id", "77"],
    ["-m", "7/7"],
    ["-u", "ASSURED,SEEN_REPLY"],
    ["-w", "7"],
    ["--orig-zone", "11"],
    ["-g"],
    ["-n", "10.99.0.3"],
    ["-s", "127.0.0.1", "-p", "tcp", "-u", "ASSURED", "-m", "0"],
]


def _ids_of(text):
    """entry id -> line (from -o extended,id output)"""
    out = {}
    for line in text.splitlines():
        m = re.search(r" id=(\d+)", line)
        assert m, "no id in %r" % line
        out[m.group(1)] = line
    return out


@pytest.mark.parametrize("env", KFILTER_MODES)
@pytest.mark.parametrize("sel", NO_OVERDELETE_CASES, ids=_id)
def test_no_over_deletion(make_ns, sel, env):
    ns = make_ns()
    before = run(ns, CONNTRACK, ["-L", "-o", "extended,id"])
    chosen = run(ns, CONNTRACK, ["-L", "-o", "extended,id"] + sel)
    assert before.rc == 0 and chosen.rc == 0, chosen.show("conntrack")
    all_ids, sel_ids = _ids_of(before.stdout), _ids_of(chosen.stdout)
    assert sel_ids, "selector %r matches nothing -- bad test case" % (sel,)
    assert len(sel_ids) < len(all_ids), "selector %r matches everything" % (sel,)
    c = run(ns, CTL, ["-D"] + sel, env=env)
    after = _ids_of(run(ns, CONNTRACK, ["-L", "-o", "extended,id"]).stdout)
    lost = [all_ids[i] for i in all_ids if i not in sel_ids and i not in after]
    assert not lost, ("ctl -D %s deleted %d entries it must not touch:\n  %s\n%s"
                      % (" ".join(sel), len(lost), "\n  ".join(lost[:20]),
                         c.show("ctl")))
    kept = [sel_ids[i] for i in sel_ids if i in after]
    assert not kept, ("ctl -D %s left %d selected entries:\n  %s\n%s"
                      % (" ".join(sel), len(kept), "\n  ".join(kept[:20]),
                         c.show("ctl")))
    assert c.rc == 0, c.show("ctl")
    assert normalize_stderr(c.stderr) == [
        "PREFIX: %d flow entries have been deleted." % len(sel_ids)], c.show("ctl")
    assert len(c.stdout.splitlines()) == len(sel_ids), c.show("ctl")


# ---------------------------------------------------------------- -D errors

DELETE_BAD_CASES = [
    ["-D", "-j"],                        # Illegal option `--any-nat'
    ["-D", "-j", "10.99.0.2"],
    ["-D", "-c", "1"],
    ["-D", "-z"],
    ["-D", "-b", "100000"],
    ["-D", "-e", "NEW"],
    ["-D", "--label-add", "ctl-one"],
    ["-D", "-s", "10.10.0.1/33"],
    ["-D", "-r", "10.10.0.0/24"],
    ["-D", "-s", "foo"],
    ["-D", "-s", "::1", "-d", "1.2.3.4"],
    ["-D", "--mask-src", "255.0.0.0"],
    ["-D", "-p", "foo"],
    ["-D", "-p", "tcp", "--state", "FOO"],
    ["-D", "-u", "foo"],
    ["-D", "-u", "ASSURED,foo"],
    ["-D", "-l", "foo"],
    ["-D", "-n", "10.99.0.3:70000"],
    ["-D", "-p", "dccp", "--role", "client"],
    ["-D", "-p", "sctp", "--orig-vtag", "1"],   # legal for -D? compare anyway
    ["-D", "-s"],
    ["-D", "-L"],
    ["-D", "-D"],
    ["-D", "-F"],
    ["-D", "foo"],
    # nothing selected in an empty table: exit 1
    ["-D", "-s", "1.2.3.4"],
    ["-D", "-p", "tcp", "--dport", "1"],
    ["-D", "-m", "1"],
]


@pytest.mark.parametrize("args", DELETE_BAD_CASES, ids=_id)
def test_delete_errors(scratch_ns, args):
    compare(scratch_ns, args, stdout_mode="exact")


DELETE_REJECTED_BY_CTL = [
    (["-D", "-p", "tcp", "--dport", "65616"], "65616"),
    (["-D", "-p", "tcp", "--sport", "-1"], "-1"),
    (["-D", "-p", "udp", "--dport", "foo"], "foo"),
    (["-D", "-p", "tcp", "--reply-port-src", "65536"], "65536"),
    (["-D", "-w", "65536"], "65536"),
    (["-D", "-m", "foo"], "foo"),
    (["-D", "-p", "icmp", "--icmp-type", "256"], "256"),
    (["-D", "-p", "sctp", "--state", "FOO"], "FOO"),
    (["-D", "-t", "foo"], "foo"),               # conntrack: timeout 0
    (["-D", "-t", "-1"], "-1"),
    (["-D", "-i", "foo"], "foo"),               # conntrack: id 0
]


@pytest.mark.oracle_differs
@pytest.mark.parametrize("args,value", DELETE_REJECTED_BY_CTL,
                         ids=[_id(a) for a, _ in DELETE_REJECTED_BY_CTL])
def test_delete_rejects_bad_numbers(make_ns, args, value):
    """ctl must refuse (exit 2, bad value quoted) and delete nothing."""
    ns = make_ns(traffic=False)
    before = sorted(l for l, _ in normalize_listing(_table(ns).stdout))
    c = run(ns, CTL, args, timeout=10)
    assert c.rc == 2 and c.stdout == "" and value in c.stderr, c.show("ctl")
    after = sorted(l for l, _ in normalize_listing(_table(ns).stdout))
    assert before == after, "ctl %r changed the table" % (args,)


# ---------------------------------------------------------------- large -D

def _seed_lines(n):
    lines = []
    for i in range(n):
        lines.append(
            "-I -p tcp -s 10.%d.%d.%d -d 192.168.%d.%d --sport %d --dport 80 "
            "--state ESTABLISHED -t 3000" % (1 + i % 2, i // 256 % 256, i % 256,
                                              i % 251, i % 199, 1024 + i))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("env", KFILTER_MODES)
def test_large_delete(make_ns, tmp_path, env):
    """5000 entries seeded with conntrack -R; delete the 2500 in 10.1/16."""
    seed = tmp_path / "seed.txt"
    seed.write_text(_seed_lines(5000))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        nss = [f.result() for f in [
            pool.submit(make_ns, traffic=False, inserts=False) for _ in range(2)]]
    for ns in nss:
        r = run(ns, CONNTRACK, ["-R", str(seed)], timeout=60)
        assert r.rc == 0, r.show("conntrack -R")
        n = run(ns, CONNTRACK, ["-C"]).stdout.strip()
        assert n == "5000", "seeding failed: %s entries" % n
    args = ["-D", "-s", "10.1.0.0/16"]
    c = run(nss[1], CTL, args, timeout=120, env=env)
    o = run(nss[0], CONNTRACK, args, timeout=120)
    assert o.rc == 0 and normalize_stderr(o.stderr) == [
        "PREFIX: 2500 flow entries have been deleted."], o.show("conntrack")
    problems = _diff_results(o, c, "listing", 3)
    if problems:
        _fail("large -D differs:\n" + "\n\n".join(problems),
              ("conntrack", o), ("ctl", c))
    rest = [run(ns, CONNTRACK, ["-L"], timeout=60) for ns in nss]
    assert all(r.rc == 0 for r in rest)
    assert len(rest[1].stdout.splitlines()) == 2500
    d = _listing_diff(rest[0].stdout, rest[1].stdout, 3)
    assert d is None, "remaining tables differ:\n" + d
    assert "src=10.1." not in rest[1].stdout


# ---------------------------------------------------------------- -G

def _real_sport(ns, dport):
    """client port of the real-traffic TCP connection to 127.0.0.1:dport"""
    r = run(ns, CONNTRACK, ["-L", "-p", "tcp", "--dport", str(dport)])
    for line in r.stdout.splitlines():
        m = re.search(r"src=127\.0\.0\.1 dst=127\.0\.0\.1 sport=(\d+) dport=%d "
                      % dport, line)
        if m:
            return m.group(1)
    pytest.skip("no real-traffic entry for port %s" % dport)


T_TCP = ["-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport", "1003",
         "--dport", "80"]

GET_CASES = [
    T_TCP,
    T_TCP + ["-o", "extended"],
    T_TCP + ["-o", "id"],
    T_TCP + ["-o", "extended,id,ktimestamp"],
    T_TCP + ["-o", "xml"],                 # no closing </conntrack>
    T_TCP + ["-o", "xml,id"],
    T_TCP + ["-o", "save"],
    T_TCP + ["-o", "timestamp"],
    T_TCP + ["-o", "userspace"],
    ["--get"] + T_TCP[0:],
    T_TCP + ["--state", "ESTABLISHED"],
    T_TCP + ["--state", "CLOSE"],          # 0 flow entries shown, exit 1
    T_TCP + ["-r", "10.10.0.2"],
    T_TCP + ["-r", "10.10.0.2", "-q", "10.10.0.1"],
    T_TCP + ["-q", "1.1.1.1"],             # filtered: exit 1
    T_TCP + ["-r", "1.1.1.1", "-q", "1.1.1.2"],
    T_TCP + ["-r", "10.10.0.2", "-q", "10.10.0.1", "--reply-port-src", "80",
             "--reply-port-dst", "1003"],
    T_TCP + ["-r", "10.10.0.2", "--reply-port-src", "80"],
    T_TCP + ["--reply-port-src", "81"],     # "No data available"
    T_TCP + ["--reply-port-dst", "1003"],
    T_TCP + ["-i", "1"],                    # id filter: 0 shown
    ["-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport", "1003",
     "--dport", "81"],                      # not found
    ["-p", "tcp", "-s", "10.10.0.2", "-d", "10.10.0.1", "--sport", "80",
     "--dport", "1003"],                    # reply tuple given as orig
    ["-p", "tcp", "--orig-src", "10.10.0.1", "--orig-dst", "10.10.0.2",
     "--orig-port-src", "1003", "--orig-port-dst", "80"],
    ["-p", "6", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport", "1003",
     "--dport", "80"],
    ["-p", "tcp", "-s", "10.10.1.1", "-d", "10.10.1.2", "--sport", "3000",
     "--dport", "22"],                      # mark 7, assured
    ["-p", "tcp", "-s", "10.10.2.1", "-d", "10.10.2.2", "--sport", "4000",
     "--dport", "25"],                      # zone 5: not found in zone 0
    ["-p", "tcp", "-s", "10.10.2.1", "-d", "10.10.2.2", "--sport", "4002",
     "--dport", "25"],                      # orig-zone 11
    ["-p", "tcp", "-s", "10.10.3.1", "-d", "10.10.3.2", "--sport", "5000",
     "--dport", "80"],                      # huge timeout
    ["-p", "tcp", "-s", "fd00:10::1", "-d", "fd00:10::2", "--sport", "2000",
     "--dport", "443", "-o", "extended"],
    ["-p", "udp", "-s", "10.20.0.1", "-d", "10.20.0.2", "--sport", "54",
     "--dport", "53"],
    ["-p", "udp", "-s", "0.0.0.0", "-d", "255.255.255.255", "--sport", "0",
     "--dport", "65535"],
    ["-p", "udp", "-s", "2001:db8::1:0:0:1", "-d", "::ffff:10.0.0.1",
     "--sport", "1", "--dport", "2"],
    ["-p", "udplite", "-s", "fd00:20::1", "-d", "fd00:20::2", "--sport",
     "1000", "--dport", "2000"],
    ["-p", "sctp", "-s", "10.30.0.1", "-d", "10.30.0.2", "--sport", "6004",
     "--dport", "36412"],
    ["-p", "sctp", "-s", "10.30.0.1", "-d", "10.30.0.2", "--sport", "6004",
     "--dport", "36412", "--orig-vtag", "1", "--reply-vtag", "2"],
    ["-p", "sctp", "-s", "10.30.0.1", "-d", "10.30.0.2", "--sport", "6004",
     "--dport", "36412", "--state", "CLOSED"],
    ["-p", "dccp", "-s", "10.40.0.1", "-d", "10.40.0.2", "--sport", "5004",
     "--dport", "5005"],                    # generic entry: 0 shown
    ["-p", "gre", "-s", "10.50.0.1", "-d", "10.50.0.2", "--srckey", "0x10",
     "--dstkey", "0xffff"],
    ["-p", "gre", "-s", "fd00:50::1", "-d", "fd00:50::2", "--srckey", "1",
     "--dstkey", "2", "-o", "extended"],
    ["-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type", "8",
     "--icmp-code", "0", "--icmp-id", "77"],
    ["-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type", "8",
     "--icmp-code", "0"],                   # id 0: not found
    ["-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type", "13",
     "--icmp-code", "0", "--icmp-id", "0"],
    ["-p", "icmpv6", "-s", "fd00:60::1", "-d", "fd00:60::2", "--icmpv6-type",
     "128", "--icmpv6-code", "0", "--icmpv6-id", "65535"],
    ["-p", "200", "-s", "10.70.0.1", "-d", "10.70.0.2"],
    ["-p", "esp", "-s", "10.70.0.1", "-d", "10.70.0.5"],
    ["-p", "253", "-s", "fd00:70::1", "-d", "fd00:70::2", "-o", "extended"],
    ["-p", "0", "-s", "10.70.0.1", "-d", "10.70.0.3"],
]


@pytest.mark.parametrize("args", GET_CASES, ids=_id)
def test_get(popns, args):
    if args[0] != "--get":
        args = ["-G"] + args
    compare(popns, args)


GET_LABEL_CASES = [
    ["-p", "tcp", "-s", "10.80.0.1", "-d", "10.80.0.2", "--sport", "8000",
     "--dport", "80", "-o", "labels"],
    ["-p", "tcp", "-s", "10.80.0.1", "-d", "10.80.0.2", "--sport", "8000",
     "--dport", "80", "-l", "ctl-one"],
    ["-p", "tcp", "-s", "10.80.0.1", "-d", "10.80.0.2", "--sport", "8000",
     "--dport", "80", "-l", "ctl-five"],     # filtered: exit 1
    ["-p", "tcp", "-s", "10.80.0.1", "-d", "10.80.0.2", "--sport", "8000",
     "--dport", "80", "-o", "xml,labels"],
    ["-p", "tcp", "-s", "fd00:80::1", "-d", "fd00:80::2", "--sport", "8001",
     "--dport", "80", "-l", "ctl-zero", "-o", "extended"],
    T_TCP + ["-l", "ctl-one"],
]


@pytest.mark.parametrize("args", GET_LABEL_CASES, ids=_id)
def test_get_labels(popns, labelmap, args):
    labelmap.skip_unless_intact()
    compare(popns, ["-G"] + args)


@pytest.mark.parametrize("dport,extra", [
    (5003, []),                            # mark 42
    (5007, ["-o", "extended"]),            # mark 0xffffffff
    (2121, ["-o", "extended,id"]),         # ftp helper
    (5001, ["-o", "xml"]),
    (5001, ["--state", "ESTABLISHED", "-r", "127.0.0.1", "-q", "127.0.0.1"]),
    (5302, []),                            # zone 7: not found from zone 0
])
def test_get_real_entries(popns, dport, extra):
    sport = _real_sport(popns, dport)
    compare(popns, [
        "-G", "-p", "tcp", "-s", "127.0.0.1", "-d", "127.0.0.1", "--sport",
        sport, "--dport", str(dport)] + extra)


def test_get_nat_entry(popns):
    """The DNAT'ed connection, looked up by its original tuple."""
    r = run(popns, CONNTRACK, ["-L", "-p", "tcp", "--dport", "8080", "-f", "ipv4"])
    m = re.search(r"src=10\.99\.0\.1 dst=10\.99\.0\.1 sport=(\d+) dport=8080", r.stdout)
    if not m:
        pytest.skip("no DNAT entry")
    base = ["-G", "-p", "tcp", "-s", "10.99.0.1", "-d", "10.99.0.1", "--sport",
            m.group(1), "--dport", "8080"]
    compare(popns, base)
    compare(popns, base + ["-r", "10.99.0.2", "-o", "extended"])
    compare(popns, base + ["-r", "10.99.0.1"])


def test_delete_by_id(make_ns):
    """-D -i ID deletes the entry with that id only (ids differ between
    namespaces, so ctl is checked on its own)."""
    ns = make_ns(traffic=False)
    r = run(ns, CONNTRACK, ["-L", "-o", "id", "-p", "udp", "--sport", "53"])
    m = re.search(r"id=(\d+)", r.stdout)
    assert m, r.show("conntrack")
    before = run(ns, CONNTRACK, ["-C"]).stdout
    c = run(ns, CTL, ["-D", "-i", m.group(1)])
    assert c.rc == 0 and normalize_stderr(c.stderr) == [
        "PREFIX: 1 flow entries have been deleted."], c.show("ctl")
    assert "sport=53 dport=53" in c.stdout
    assert int(run(ns, CONNTRACK, ["-C"]).stdout) == int(before) - 1


def test_get_by_id(popns):
    r = run(popns, CONNTRACK, ["-G"] + T_TCP + ["-o", "id"])
    m = re.search(r"id=(\d+)", r.stdout)
    assert m, r.show("conntrack")
    compare(popns, ["-G"] + T_TCP + ["-i", m.group(1)])


GET_BAD_CASES = [
    ["-G"],
    ["-G", "-s", "10.10.0.1", "-d", "10.10.0.2"],      # needs --protonum
    ["-G", "-p", "tcp"],
    ["-G", "-p", "tcp", "-s", "10.10.0.1", "--sport", "1003", "--dport", "80"],
    ["-G", "-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport", "1003"],
    ["-G", "-p", "tcp", "-r", "10.10.0.2", "-q", "10.10.0.1"],
    ["-G", "-p", "tcp", "-r", "10.10.0.2", "-q", "10.10.0.1",
     "--reply-port-src", "80", "--reply-port-dst", "1003"],
    ["-G", "-p", "udp", "-s", "10.20.0.1", "-d", "10.20.0.2"],
    ["-G", "-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2"],
    ["-G", "-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type",
     "8", "--icmp-id", "77"],
    ["-G", "-p", "icmpv6", "-s", "fd00:60::1", "-d", "fd00:60::2"],
    ["-G", "-p", "gre", "-s", "10.50.0.1", "-d", "10.50.0.2"],
    ["-G", "-p", "gre", "-s", "10.50.0.1", "-d", "10.50.0.2", "--srckey", "1"],
    ["-G", "-p", "tcp", "-s", "10.10.0.1/24", "-d", "10.10.0.2", "--sport",
     "1003", "--dport", "80"],
    ["-G", "-s", "::1", "-d", "10.10.0.2"],
    ["-G", "-p", "tcp", "-s", "foo"],
    *[["-G"] + T_TCP + extra for extra in [
        ["-m", "0"], ["-m", "0/0"], ["-u", "ASSURED"], ["-w", "0"],
        ["--orig-zone", "0"], ["--reply-zone", "0"], ["-n"], ["-g"], ["-j"],
        ["-c", "0"], ["-z"], ["-f", "ipv4"], ["-t", "5"],
        ["--mask-src", "255.0.0.0"], ["-b", "100000"], ["-e", "NEW"],
        ["--label-add", "ctl-one"], ["-L"], ["-G"], ["-D"], ["-o", "foo"],
        ["-l", "foo"], ["-p", "dccp", "--role", "client"],
        ["--state", "FOO"]]],
]


@pytest.mark.parametrize("args", GET_BAD_CASES, ids=_id)
def test_get_errors(scratch_ns, args):
    compare(scratch_ns, args, stdout_mode="exact")


GET_REJECTED_BY_CTL = [
    (["-G", "-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport",
      "66539", "--dport", "80"], "66539"),          # conntrack: 1003
    (["-G", "-p", "tcp", "-s", "10.10.0.1", "-d", "10.10.0.2", "--sport",
      "1003", "--dport", "80x"], "80x"),
    (["-G", "-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type",
      "264", "--icmp-code", "0", "--icmp-id", "77"], "264"),
    (["-G", "-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2", "--icmp-type",
      "8", "--icmp-code", "0", "--icmp-id", "65613"], "65613"),
]


@pytest.mark.oracle_differs
@pytest.mark.parametrize("args,value", GET_REJECTED_BY_CTL,
                         ids=[_id(a) for a, _ in GET_REJECTED_BY_CTL])
def test_get_rejects_bad_numbers(popns, args, value):
    c = run(popns, CTL, args, timeout=10)
    assert c.rc == 2 and c.stdout == "" and value in c.stderr, c.show("ctl")


def test_concurrent_deletes_lose_nothing(scratch_ns, tmp_path):
    """Three ctl -D of the same 3,000 entries at once: most deletes of two
    of them fail with ENOENT (the entry is gone), and those error replies
    must fit the batch socket's receive buffer (a default-sized one
    overflowed: "No buffer space available").  Together they delete every
    entry exactly once, and none fails."""
    path = tmp_path / "seed.txt"
    path.write_text("".join(
        "-I -p udp -s 10.%d.%d.1 -d 10.200.0.1 --sport 1 --dport 2 -t 300\n" % (i // 250, i % 250)
        for i in range(3000)))
    scratch_ns.exec([CONNTRACK, "-R", str(path)])
    try:
        procs = [scratch_ns.spawn([CTL, "-D", "-d", "10.200.0.1"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        counts = []
        for e in errors:
            m = re.search(r"(\d+) flow entries have been deleted\.", e)
            assert m and "Operation failed" not in e, e
            counts.append(int(m.group(1)))
        assert sum(counts) == 3000, counts
    finally:
        scratch_ns.exec([CONNTRACK, "-F"], check=False)
