"""-L --group-by, --top and --all-netns (ctl's own additions, issue 17).

Grouped counts are checked against counts computed here from conntrack's
own ``-L -o extended,labels`` output of the same namespace (the shared,
richly populated one: tcp in every state, udp without state, icmp, gre,
sctp, marks, zones, labels, and real loopback traffic with accounting on).
The listing is taken before and after ctl's run; a comparison is only made
when the two agree (the table did not change in between), retried a few
times otherwise.

--all-netns runs with CTL_NETNS_DIR pointing at a directory of this test's
own (symbolic links to its own namespaces, and a bogus file that cannot be
entered), so that other programs' namespaces under /run/netns are never
read.
"""

import collections
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import CONNTRACK, CTL, IP, check_metrics, run

pytestmark = pytest.mark.oracle_differs

KEYS = ["family", "proto", "src", "dst", "sport", "dport", "reply-src", "reply-dst",
        "reply-sport", "reply-dport", "state", "status", "mark", "zone", "label", "helper", "netns"]


# --------------------------------------------------------------------------
# conntrack's lines -> fields
# --------------------------------------------------------------------------

def parse_extended(line, netns="-"):
    """One line of conntrack -L -o extended,labels -> dict of key -> text
    (as --group-by prints it; "none" where the line has no such field)
    plus packets/bytes sums and the unreplied/assured flags."""
    words = line.split()
    f = {k: "none" for k in KEYS}
    f["family"] = words[0]
    f["proto"] = words[3] if words[2] == "unknown" else words[2]
    rest = words[5:]
    if rest and "=" not in rest[0] and not rest[0].startswith("["):
        f["state"] = rest[0]
        rest = rest[1:]
    direction = None
    has_ports = words[2] in ("tcp", "udp", "udplite", "sctp", "dccp")
    f["packets"] = f["bytes"] = 0
    f["accounting"] = False
    f["unreplied"] = "[UNREPLIED]" in rest
    f["assured"] = "[ASSURED]" in rest
    for w in rest:
        if "=" not in w:
            continue
        k, v = w.split("=", 1)
        if k == "src":
            direction = "orig" if direction is None else "reply"
        prefix = "" if direction == "orig" else "reply-"
        if k in ("src", "dst"):
            f[prefix + k] = v
        elif k in ("sport", "dport") and has_ports:
            f[prefix + k] = v
        elif k in ("packets", "bytes"):
            f[k] += int(v)
            f["accounting"] = True
        elif k in ("mark", "zone", "helper"):
            f[k] = v
        elif k == "labels":
            f["label"] = v or "none"
    f["netns"] = netns
    return f


def oracle_fields(ns, args=()):
    r = run(ns, CONNTRACK, ["-L", "-o", "extended,labels"] + list(args))
    assert r.rc == 0, r.show("conntrack")
    return [parse_extended(l) for l in r.stdout.splitlines() if l.strip()]


def ctl_groups(text, keys):
    """ctl's --group-by text -> ({values tuple: (count, packets, bytes)},
    total dict, order of the values)."""
    groups, order, total = {}, [], None
    for line in text.splitlines():
        words = line.split()
        if words[0] == "total":
            total = dict(w.split("=", 1) for w in words[1:])
            continue
        count = int(words[0])
        pairs = [w.split("=", 1) for w in words[1:]]
        values = tuple(v for k, v in pairs[:len(keys)])
        assert [k for k, v in pairs[:len(keys)]] == keys, line
        extra = dict(pairs[len(keys):])
        assert values not in groups, "group printed twice: %r" % line
        groups[values] = (count, int(extra.get("packets", -1)), int(extra.get("bytes", -1)))
        order.append(values)
    assert total is not None, "no total line:\n" + text
    return groups, total, order


def expected_groups(fields, keys, label_names=True):
    acc = any(f["accounting"] for f in fields)
    out = collections.defaultdict(lambda: [0, 0, 0])
    for f in fields:
        g = out[tuple(f[k] for k in keys)]
        g[0] += 1
        g[1] += f["packets"]
        g[2] += f["bytes"]
    return {k: (v[0], v[1] if acc else -1, v[2] if acc else -1) for k, v in out.items()}


def normalize_ctl(groups, keys):
    """ctl's labels keep unnamed bits as numbers, conntrack's drop them;
    ctl's status is the whole flag set, compared separately."""
    if "label" not in keys:
        return groups
    i = keys.index("label")
    out = collections.defaultdict(lambda: [0, 0, 0])
    for values, (c, p, b) in groups.items():
        names = [n for n in values[i].split(",") if not n.isdigit() and n != "none"]
        v = list(values)
        v[i] = ",".join(names) or "none"
        g = out[tuple(v)]
        g[0] += c
        g[1] += p
        g[2] += b
    return {k: tuple(v) for k, v in out.items()}


def compare_with_oracle(ns, keys, selectors=(), attempts=4):
    """Runs conntrack, ctl --group-by, conntrack; compares when the two
    conntrack listings agree. Returns ctl's result."""
    for _ in range(attempts):
        before = oracle_fields(ns, selectors)
        r = run(ns, CTL, ["-L", "--group-by", ",".join(keys)] + list(selectors))
        after = oracle_fields(ns, selectors)
        if expected_groups(before, keys) != expected_groups(after, keys):
            continue
        assert r.rc == 0, r.show("ctl")
        assert r.stderr == "", r.show("ctl")
        groups, total, order = ctl_groups(r.stdout, keys)
        want = expected_groups(before, keys)
        assert normalize_ctl(groups, keys) == want, r.show("ctl") + "\nexpected: %r" % want
        assert int(total["entries"]) == len(before)
        assert int(total["groups"]) == len(groups)
        counts = [groups[v][0] for v in order]
        assert counts == sorted(counts, reverse=True), r.show("ctl")
        return r, groups, order, before
    pytest.fail("the table kept changing under the comparison")


# --------------------------------------------------------------------------
# grouped counts against conntrack's listing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [
    ["src"], ["dst"], ["proto"], ["family", "proto"], ["proto", "state"], ["sport"], ["dport"],
    ["reply-src", "reply-dst"], ["reply-sport", "reply-dport"], ["mark"], ["zone"], ["helper"],
    ["proto", "dport", "state", "mark", "zone"], ["src", "dst", "sport", "dport"],
], ids=",".join)
def test_counts_match_conntrack(popns, keys):
    r, groups, order, fields = compare_with_oracle(popns, keys)
    assert len(fields) > 20, "the shared namespace is too empty: %d entries" % len(fields)
    if keys == ["proto", "state"]:
        # udp has no state column: it counts under state=none, not shifted
        assert any(v[0] == "udp" and v[1] == "none" for v in groups), r.stdout
    if keys == ["sport"]:
        assert any(v[0] == "none" for v in groups), "icmp/gre entries have no port: " + r.stdout


def test_labels_match_conntrack(popns, labelmap):
    labelmap.skip_unless_intact()
    r, groups, order, fields = compare_with_oracle(popns, ["label"])
    assert any(v[0] != "none" for v in groups), "no labelled entry: " + r.stdout


def test_status_agrees_with_the_text_flags(popns):
    for _ in range(4):
        before = oracle_fields(popns)
        r = run(popns, CTL, ["-L", "--group-by", "status"])
        after = oracle_fields(popns)
        key = lambda fs: collections.Counter((not f["unreplied"], f["assured"]) for f in fs)
        if key(before) != key(after):
            continue
        groups, total, order = ctl_groups(r.stdout, ["status"])
        got = collections.Counter()
        for (status,), (c, p, b) in groups.items():
            flags = status.split(",")
            got[("SEEN_REPLY" in flags, "ASSURED" in flags)] += c
        assert got == key(before), r.stdout
        return
    pytest.fail("the table kept changing")


@pytest.mark.parametrize("selectors", [
    ["-p", "udp"], ["-p", "tcp", "--state", "ESTABLISHED"], ["-s", "10.10.0.0/16"], ["-f", "ipv6"],
    ["-m", "7"], ["-w", "5"], ["-u", "ASSURED"], ["-p", "tcp", "--dport", "22"],
], ids=" ".join)
def test_selectors_apply(popns, selectors):
    r, groups, order, fields = compare_with_oracle(popns, ["proto", "src"], selectors)
    assert fields, "the selector %r selects nothing in the shared namespace" % selectors


def test_accounting_sums(popns):
    r, groups, order, fields = compare_with_oracle(popns, ["proto"])
    assert any(f["accounting"] for f in fields), "accounting is off in the shared namespace"
    assert all(p >= 0 for c, p, b in groups.values())
    assert "packets=" in r.stdout.splitlines()[-1]


def test_order_count_then_values(popns):
    r, groups, order, fields = compare_with_oracle(popns, ["src"])

    def value_key(v):
        try:
            a = ipaddress.ip_address(v[0])
            return (0, a.version, int(a))
        except ValueError:
            return (1,)
    want = sorted(order, key=lambda v: (-groups[v][0], value_key(v)))
    assert order == want, r.stdout


def test_top(popns):
    for _ in range(4):
        full = run(popns, CTL, ["-L", "--group-by", "dst"])
        top = run(popns, CTL, ["-L", "--group-by", "dst", "--top", "3"])
        again = run(popns, CTL, ["-L", "--group-by", "dst"])
        if full.stdout != again.stdout:
            continue
        assert top.rc == 0, top.show("ctl")
        lines = full.stdout.splitlines()
        assert len(lines) > 5, full.stdout
        # the widths of the count column may differ: compare the words
        assert [l.split() for l in top.stdout.splitlines()] == [l.split() for l in lines[:3] + lines[-1:]]
        return
    pytest.fail("the table kept changing")


def test_json(popns):
    for _ in range(4):
        text = run(popns, CTL, ["-L", "--group-by", "proto,dport"])
        js = run(popns, CTL, ["-L", "--group-by", "proto,dport", "-o", "json"])
        again = run(popns, CTL, ["-L", "--group-by", "proto,dport"])
        if text.stdout != again.stdout:
            continue
        assert js.rc == 0, js.show("ctl")
        objs = [json.loads(l) for l in js.stdout.splitlines()]
        groups, total, order = ctl_groups(text.stdout, ["proto", "dport"])
        assert objs[-1] == {"total": {k: int(v) for k, v in total.items()}}
        got = []
        for o in objs[:-1]:
            assert list(o)[:3] == ["count", "proto", "dport"], o
            assert o["dport"] is None or isinstance(o["dport"], int)
            got.append(((o["proto"], "none" if o["dport"] is None else str(o["dport"])),
                        (o["count"], o.get("packets", -1), o.get("bytes", -1))))
        assert got == [(v, groups[v]) for v in order]
        return
    pytest.fail("the table kept changing")


# --------------------------------------------------------------------------
# -o metrics (promtool and prometheus_client)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [["src"], ["proto", "state", "dport"], ["reply-src", "zone", "mark"]], ids=",".join)
def test_metrics_match_conntrack(popns, keys):
    for _ in range(4):
        before = oracle_fields(popns)
        r = run(popns, CTL, ["-L", "--group-by", ",".join(keys), "-o", "metrics"])
        if expected_groups(oracle_fields(popns), keys) != expected_groups(before, keys):
            continue
        assert r.rc == 0, r.show("ctl")
        samples = check_metrics(r.stdout)
        want = expected_groups(before, keys)
        names = [k.replace("-", "_") for k in keys]
        got = {}
        for (name, labels), value in samples.items():
            labels = dict(labels)
            values = tuple(labels[n] for n in names)
            g = got.setdefault(values, [-1, -1, -1])
            g[["ctl_conntrack_group_entries", "ctl_conntrack_group_packets", "ctl_conntrack_group_bytes"]
              .index(name)] = int(value)
        assert {k: tuple(v) for k, v in got.items()} == want
        return
    pytest.fail("the table kept changing")


def test_metrics_top_and_escaping(scratch_ns, tmp_path):
    # a helper name cannot be chosen freely; labels' values come from the
    # namespace name, which can: quotes and backslashes must be escaped
    d = tmp_path / "dir"
    d.mkdir()
    odd = 'odd"name\\x'
    os.symlink("/run/netns/" + scratch_ns.name, str(d / odd))
    r = run(scratch_ns, CTL, ["-L", "--all-netns", "--group-by", "netns,proto", "-o", "metrics"],
            env={"CTL_NETNS_DIR": str(d)})
    assert r.rc == 0, r.show("ctl")
    # the scratch namespace is empty: no group, an empty exposition is fine
    assert r.stdout == "" or check_metrics(r.stdout)
    run(scratch_ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.9.9.1", "-d", "10.9.9.2", "--sport", "1",
                                "--dport", "2", "-t", "100"])
    run(scratch_ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.9.9.1", "-d", "10.9.9.2", "--sport", "1",
                                "--dport", "2", "-t", "100", "--state", "ESTABLISHED"])
    run(scratch_ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.9.9.3", "-d", "10.9.9.2", "--sport", "1",
                                "--dport", "2", "-t", "100", "--state", "ESTABLISHED"])
    try:
        r = run(scratch_ns, CTL, ["-L", "--all-netns", "--group-by", "netns,proto", "-o", "metrics", "--top", "1"],
                env={"CTL_NETNS_DIR": str(d)})
        samples = check_metrics(r.stdout)
        entries = {k: v for k, v in samples.items() if k[0] == "ctl_conntrack_group_entries"}
        assert entries == {("ctl_conntrack_group_entries", frozenset({("netns", odd), ("proto", "tcp")})): 2}, r.stdout
        c = run(scratch_ns, CTL, ["-C", "--all-netns", "-o", "metrics", "-p", "tcp"], env={"CTL_NETNS_DIR": str(d)})
        samples = check_metrics(c.stdout)
        assert samples == {("ctl_conntrack_selected_entries", frozenset({("netns", odd), ("selector", "-p tcp")})): 2}
        c = run(scratch_ns, CTL, ["-C", "--all-netns", "-o", "json"], env={"CTL_NETNS_DIR": str(d)})
        assert [json.loads(l) for l in c.stdout.splitlines()] == [{"netns": odd, "entries": 3}], c.show("ctl")
    finally:
        run(scratch_ns, CONNTRACK, ["-D", "-s", "10.9.9.0/24"])


# --------------------------------------------------------------------------
# --interval: -L --group-by and -E --group-by, in a pipe and under tmux
# --------------------------------------------------------------------------

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def interval_blocks(ns, args, seconds, during=None):
    """Runs ctl ARGS in a pipe, calls `during` after a moment, then SIGINT
    after `seconds`: (rc, stderr, [blocks of lines without the timestamp])."""
    p = ns.spawn([CTL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        if during:
            during()
        time.sleep(seconds)
        p.send_signal(signal.SIGINT)   # ip netns exec runs ctl in its place
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    text = out.decode()
    assert "\x1b" not in text, "escape sequences in a pipe"
    blocks = []
    for line in text.splitlines():
        if TIMESTAMP.match(line):
            blocks.append([])
        else:
            assert blocks, "output before the first timestamp line: %r" % text
            blocks[-1].append(line)
    return p.returncode, err.decode(), blocks


def _insert_udp(ns, n, net="10.9.8"):
    for i in range(n):
        r = run(ns, CONNTRACK, ["-I", "-p", "udp", "-s", "%s.%d" % (net, i + 1), "-d", "%s.200" % net,
                                "--sport", "1", "--dport", "53", "-t", "100"])
        assert r.rc == 0, r.show("conntrack")


def test_event_groups_per_interval(make_ns):
    ns = make_ns(traffic=False, inserts=False)

    def during():
        _insert_udp(ns, 3)
        run(ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.9.8.1", "-d", "10.9.8.200", "--sport", "1",
                            "--dport", "80", "-t", "100", "--state", "ESTABLISHED"])
        run(ns, CONNTRACK, ["-U", "-p", "tcp", "-s", "10.9.8.1", "-u", "ASSURED"])
        run(ns, CONNTRACK, ["-D", "-p", "udp"])
    rc, err, blocks = interval_blocks(ns, ["-E", "--group-by", "proto,dport", "--interval", "0.5"], 1.5, during)
    assert rc == 0 and err == "", err
    assert len(blocks) >= 3, blocks
    counts = collections.Counter()
    for block in blocks:
        assert block[0].startswith("events "), block
        assert block[-1].startswith("total groups="), block
        total = dict(w.split("=") for w in block[-1].split()[1:] if "=" in w)
        summed = collections.Counter()
        for line in block[1:-1]:
            words = line.split()
            f = dict(w.split("=") for w in words[1:])
            assert int(words[0]) == int(f["new"]) + int(f["update"]) + int(f["destroy"]), line
            for t in ("new", "update", "destroy"):
                counts[(f["proto"], f["dport"], t)] += int(f[t])
                summed[t] += int(f[t])
        assert all(summed[t] == int(total[t]) for t in ("new", "update", "destroy")), block
    assert counts[("udp", "53", "new")] == 3 and counts[("udp", "53", "destroy")] == 3, blocks
    assert counts[("tcp", "80", "new")] == 1 and counts[("tcp", "80", "update")] >= 1, blocks
    assert counts[("tcp", "80", "destroy")] == 0


def test_interval_json_lines(make_ns):
    """--interval with -o json: JSON lines, each with "time" first, no
    timestamp lines; -L's groups and -E's event counts."""
    ns = make_ns(traffic=False, inserts=False)
    _insert_udp(ns, 2, "10.9.3")
    for args, during in ((["-L", "--group-by", "dport"], None),
                         (["-E", "--group-by", "dport"], lambda: _insert_udp(ns, 3, "10.9.4"))):
        p = ns.spawn([CTL] + args + ["--interval", "0.4", "-o", "json"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
        try:
            time.sleep(0.5)
            if during:
                during()
            time.sleep(1.0)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        assert (p.returncode, err) == (0, b""), (args, p.returncode, err)
        objs = [json.loads(l) for l in out.decode().splitlines()]
        assert all(list(o)[0] == "time" for o in objs), objs
        totals = [o for o in objs if "total" in o]
        assert len(totals) >= 3, objs
        if args[0] == "-L":
            assert {"time", "count", "dport", "packets", "bytes"} == set(objs[0]) and objs[0]["count"] == 2, objs
            assert all(t["total"]["entries"] == 2 for t in totals), totals
        else:
            assert sum(t["total"]["new"] for t in totals) == 3, totals
            assert sum(o["new"] for o in objs if o.get("dport") == 53) == 3, objs


def test_list_groups_follow_the_table(make_ns):
    ns = make_ns(traffic=False, inserts=False)
    rc, err, blocks = interval_blocks(ns, ["-L", "--group-by", "dport", "--interval", "0.4"], 1.2,
                                      lambda: _insert_udp(ns, 4, "10.9.7"))
    assert rc == 0 and err == "", err
    assert blocks[0][0].startswith("entries 0 of "), blocks
    assert blocks[-1][0].startswith("entries 4 of "), blocks
    assert blocks[-1][1:] == ["4 dport=53 packets=0 bytes=0", "total groups=1 entries=4 packets=0 bytes=0"], blocks


def test_group_screen_under_tmux(make_ns):
    ns = make_ns(traffic=False, inserts=False)
    _insert_udp(ns, 2, "10.9.5")
    server = "ctltest-%s" % secrets.token_hex(4)
    # The shell around ctl ignores C-c itself and prints ctl's exit status
    # (tmux 3.3a does not always report a pane's status); ctl sets its own
    # SIGINT handler, so C-c still reaches it.
    cmd = "trap '' INT; %s netns exec %s %s -L --group-by src --top 1 --interval 0.3; echo exit=$?; sleep 30" % (
        IP, ns.name, CTL)
    tmux = lambda *a, check=True: subprocess.run(["tmux", "-L", server] + list(a), capture_output=True, text=True,
                                                 timeout=10, check=check)
    try:
        tmux("new-session", "-d", "-s", "live", "-x", "100", "-y", "20", "sh")
        tmux("respawn-pane", "-k", "-t", "live", cmd)
        time.sleep(1.0)
        screen = [l for l in tmux("capture-pane", "-p", "-t", "live").stdout.splitlines() if l.strip()]
        assert screen[0].startswith("entries 2 of "), screen
        assert screen[1:] == ["1 src=10.9.5.1 packets=0 bytes=0", "total groups=2 entries=2 packets=0 bytes=0"], screen
        assert sum(1 for l in screen if l.startswith("entries ")) == 1, "one screen, repainted: %r" % screen
        tmux("send-keys", "-t", "live", "C-c")
        for _ in range(50):
            screen = tmux("capture-pane", "-p", "-t", "live").stdout
            if "exit=" in screen:
                break
            time.sleep(0.1)
        assert "exit=0" in screen, screen
    finally:
        tmux("kill-server", check=False)


# --------------------------------------------------------------------------
# --all-netns
# --------------------------------------------------------------------------

@pytest.fixture
def netns_dir(make_ns):
    """Two fresh namespaces of this test's own and a directory naming them
    (a, b) plus a file that is no namespace (bogus)."""
    a = make_ns(traffic=True, inserts=True)
    b = make_ns(traffic=False, inserts=False)
    for i in range(3):
        r = run(b, CONNTRACK, ["-I", "-p", "udp", "-s", "10.77.0.%d" % (i + 1), "-d", "10.77.1.1",
                               "--sport", "100", "--dport", "53", "-t", "3000"])
        assert r.rc == 0, r.show("conntrack")
    d = tempfile.mkdtemp(prefix="ctltest-netns-")
    try:
        os.symlink("/run/netns/" + a.name, os.path.join(d, "a"))
        os.symlink("/run/netns/" + b.name, os.path.join(d, "b"))
        yield a, b, d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _strip_timeout(line):
    return re.sub(r"^(\S+\s+\d+ )\d+ ", r"\1T ", re.sub(r"delta-time=\d+ ?", "", line))


def test_all_netns_list_count_group(netns_dir, scratch_ns):
    a, b, d = netns_dir
    env = {"CTL_NETNS_DIR": d}
    for _ in range(4):
        listing = lambda ns: sorted(map(_strip_timeout, run(ns, CONNTRACK, ["-L"]).stdout.splitlines()))
        la, lb = listing(a), listing(b)
        r = run(a, CTL, ["-L", "--all-netns"], env=env)
        if listing(a) != la:
            continue
        assert r.rc == 0, r.show("ctl")
        # a is the current namespace: it takes its name from the directory
        want = sorted(["a " + l for l in la] + ["b " + l for l in lb])
        got = sorted(n + " " + _strip_timeout(rest) for n, rest in (l.split(" ", 1) for l in r.stdout.splitlines()))
        assert got == want, r.show("ctl")
        assert r.stdout.splitlines()[0].startswith("a "), "the current namespace comes first"
        assert r.stderr.endswith("%d flow entries have been shown.\n" % len(want)), r.stderr
        break
    else:
        pytest.fail("the table kept changing")
    # from a namespace that has no name in the directory: "-"
    c = run(scratch_ns, CTL, ["-C", "--all-netns"], env=env)
    assert c.rc == 0, c.show("ctl")
    n_a = int(run(a, CONNTRACK, ["-C"]).stdout)
    n_b = int(run(b, CONNTRACK, ["-C"]).stdout)
    assert c.stdout.splitlines()[0] == "- 0"
    assert c.stdout.splitlines()[1].split()[0] == "a" and abs(int(c.stdout.splitlines()[1].split()[1]) - n_a) <= 2
    assert c.stdout.splitlines()[2] == "b %d" % n_b, c.stdout
    # grouped by namespace, and by source across namespaces
    g = run(scratch_ns, CTL, ["-L", "--all-netns", "--group-by", "netns,proto", "-p", "udp", "-o", "json"], env=env)
    assert g.rc == 0, g.show("ctl")
    objs = [json.loads(l) for l in g.stdout.splitlines()]
    assert {"count": 3, "netns": "b", "proto": "udp"} in [{k: o[k] for k in ("count", "netns", "proto")} for o in objs[:-1]]
    udp_a = len([l for l in run(a, CONNTRACK, ["-L", "-p", "udp"]).stdout.splitlines() if l])
    assert objs[-1]["total"]["entries"] == udp_a + 3, g.stdout
    s = run(scratch_ns, CTL, ["-L", "--all-netns", "--group-by", "src", "-s", "10.77.0.0/24"], env=env)
    # (accounting is on in the test namespaces: inserted entries count 0)
    assert s.stdout.splitlines() == ["1 src=10.77.0.%d packets=0 bytes=0" % i for i in (1, 2, 3)] + [
        "total groups=3 entries=3 packets=0 bytes=0"], s.show("ctl")
    # -o json carries the namespace
    j = run(scratch_ns, CTL, ["-L", "--all-netns", "-o", "json", "-s", "10.77.0.1"], env=env)
    assert [json.loads(l)["netns"] for l in j.stdout.splitlines()] == ["b"], j.show("ctl")


def test_all_netns_reads_run_netns(netns_dir, tmp_path):
    """Without CTL_NETNS_DIR: /run/netns itself, in a private mount
    namespace whose /run/netns (a tmpfs) holds only this test's two
    namespaces, as "first" (a) and "second" (b); ctl runs in b, which then
    takes its name. The host's own table is never listed."""
    a, b, d = netns_dir
    hold_a, hold_b = tmp_path / "hold-a", tmp_path / "hold-b"
    script = """set -e
touch {ha} {hb}
mount --bind /run/netns/{a} {ha}
mount --bind /run/netns/{b} {hb}
mount -t tmpfs ctltest /run/netns
touch /run/netns/first /run/netns/second
mount --bind {ha} /run/netns/first
mount --bind {hb} /run/netns/second
exec nsenter --net=/run/netns/second {ctl} "$@"
""".format(ha=hold_a, hb=hold_b, a=a.name, b=b.name, ctl=CTL)
    env = dict(os.environ)
    env.pop("CTL_NETNS_DIR", None)

    def ctl(*args):
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"] + list(args),
                           capture_output=True, text=True, timeout=20, env=env)
        return p.returncode, p.stdout, p.stderr
    rc, out, err = ctl("-C", "--all-netns")
    assert (rc, err) == (0, ""), (rc, out, err)
    lines = out.splitlines()
    assert [l.split()[0] for l in lines] == ["second", "first"], out
    assert lines[0] == "second 3", out
    n_a = int(run(a, CONNTRACK, ["-C"]).stdout)
    assert abs(int(lines[1].split()[1]) - n_a) <= 2, (out, n_a)
    rc, out, err = ctl("-L", "--all-netns", "--group-by", "netns", "-p", "udp", "-s", "10.77.0.0/16")
    assert (rc, err) == (0, ""), (rc, out, err)
    assert out.splitlines() == ["3 netns=second packets=0 bytes=0", "total groups=1 entries=3 packets=0 bytes=0"], out


def test_all_netns_skips_what_cannot_be_entered(netns_dir):
    a, b, d = netns_dir
    with open(os.path.join(d, "0-bogus"), "w") as f:
        f.write("not a namespace\n")
    os.symlink("/run/netns/ctltest-gone-%d" % os.getpid(), os.path.join(d, "gone"))
    env = {"CTL_NETNS_DIR": d}
    for args in (["-C", "--all-netns"], ["-L", "--all-netns", "-p", "udp"],
                 ["-L", "--all-netns", "--group-by", "netns"]):
        r = run(a, CTL, args, env=env)
        assert r.rc == 1, r.show("ctl")
        assert "network namespace `0-bogus' skipped: cannot open or enter %s/0-bogus: Invalid argument" % d \
            in r.stderr, r.show("ctl")
        assert "network namespace `gone' skipped: cannot open or enter %s/gone: No such file or directory" % d \
            in r.stderr, r.show("ctl")
        # the rest still print
        assert "b" in [l.split()[0] for l in r.stdout.splitlines()] or "netns=b" in r.stdout, r.show("ctl")


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["-L", "--group-by", "source"], "--group-by: unknown key `source' (keys: " + ", ".join(KEYS) + ")"),
    (["-L", "--group-by", "src,"], "--group-by: empty key in `src,'"),
    (["-L", "--group-by", "src,src"], "--group-by: key `src' given twice"),
    (["-L", "--group-by", "src", "--top", "0"], "--top takes a number of groups, 1 or more; not `0'"),
    (["-L", "--group-by", "src", "--top", "x"], "--top takes a number of groups, 1 or more; not `x'"),
    (["-L", "--top", "5"], "--top needs --group-by"),
    (["-D", "--group-by", "src"], "--group-by works with -L and -E (of the conntrack table) only"),
    (["-C", "--group-by", "src"], "--group-by works with -L and -E (of the conntrack table) only"),
    (["-L", "expect", "--group-by", "src"], "--group-by works with -L and -E (of the conntrack table) only"),
    (["-L", "--group-by"], "option `--group-by' requires an argument"),
    (["-L", "--group-by", "src", "-o", "xml"], "--group-by prints counts: -o takes only json or metrics with it"),
    (["-E", "--group-by", "src"], "-E --group-by needs --interval SECONDS"),
    (["-D", "--all-netns"], "--all-netns works with -L, -C and -L --group-by only"),
    (["-L", "--all-netns", "-o", "save"], "--all-netns does not combine with -o xml or -o save"),
    (["-L", "--all-netns", "--netns", "x"], "--all-netns and --netns do not go together"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_input(scratch_ns, args, message):
    r = run(scratch_ns, CTL, args)
    assert r.rc == 2, r.show("ctl")
    assert r.stdout == ""
    assert r.stderr.splitlines()[0].split(": ", 1)[1] == message, r.show("ctl")
