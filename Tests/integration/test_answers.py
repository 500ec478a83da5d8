"""ctl's additions to -C and -S (issue 17): filtered counts (-C with
selectors), -o json and -o metrics on -S and -C, --interval (blocks in a
pipe, a repainted screen under tmux).

Filtered counts are checked against the line count of conntrack's own -L
with the same selectors in the same namespace; metrics go through
`promtool check metrics` and prometheus_client's text parser, and their
values are checked against conntrack's -C, -S and the namespace's
nf_conntrack_max."""

import json
import os
import re
import secrets
import signal
import subprocess
import time

import pytest

from conftest import CONNTRACK, CTL, IP, check_metrics, run

pytestmark = pytest.mark.oracle_differs

TMUX = "tmux"


def _id(args):
    return " ".join(args)


def stable_count(ns, selectors, env=None):
    """(conntrack -L SELECTORS line count, ctl -C SELECTORS) taken while the
    table held still: conntrack's count before and after ctl's agree."""
    for _ in range(4):
        before = run(ns, CONNTRACK, ["-L"] + selectors)
        c = run(ns, CTL, ["-C"] + selectors, env=env)
        after = run(ns, CONNTRACK, ["-L"] + selectors)
        assert before.rc == 0, before.show("conntrack")
        if before.stdout.count("\n") == after.stdout.count("\n"):
            return before.stdout.count("\n"), c
    pytest.fail("the table kept changing under %r" % (selectors,))


# Selectors -L takes, as -C now takes them: each must give -L's line count.
SELECTORS = [
    ["-p", "udp"], ["-p", "tcp"], ["-p", "tcp", "--dport", "80"], ["-p", "tcp", "--sport", "1003"],
    ["-p", "tcp", "--state", "ESTABLISHED"], ["-p", "sctp", "--state", "ESTABLISHED"],
    ["-p", "icmp"], ["-p", "gre"], ["-p", "200"],
    ["-s", "10.10.0.0/16"], ["-s", "10.10.0.1"], ["-d", "10.20.0.2"], ["-s", "fd00:10::/32"],
    ["-r", "10.10.3.2"], ["-q", "10.10.3.1"],
    ["-f", "ipv6"], ["-f", "ipv4"], ["-f", "ipv4", "-p", "tcp"],
    ["-m", "7"], ["-m", "0x10/0xff"], ["-m", "0"], ["-u", "ASSURED"], ["-u", "SEEN_REPLY"],
    ["-u", "FIXED_TIMEOUT"], ["-m", "7", "-u", "ASSURED"],
    ["-w", "5"], ["-w", "7"], ["--orig-zone", "11"], ["--reply-zone", "12"],
    ["-n"], ["-g"], ["-j"], ["-g", "10.99.0.2"],
    ["-s", "10.10.1.1", "-p", "tcp", "--dport", "22", "-m", "7"],
    ["-s", "192.0.2.1"],                                  # nothing matches
]


@pytest.mark.parametrize("selectors", SELECTORS, ids=_id)
@pytest.mark.parametrize("kernel_filter", [True, False], ids=["kernel-filter", "userspace-only"])
def test_filtered_count_is_listing_line_count(popns, selectors, kernel_filter):
    env = None if kernel_filter else {"CTL_NO_KERNEL_FILTER": "1"}
    expected, c = stable_count(popns, selectors, env=env)
    assert c.rc == 0 and c.stderr == "", c.show("ctl")
    assert c.stdout == "%d\n" % expected, c.show("ctl")


def test_filtered_counts_are_not_all_the_same(popns):
    """The table above has entries for most selectors and none for some: the
    counts really select (a -C that ignored its selectors would fail)."""
    total = int(run(popns, CONNTRACK, ["-C"]).stdout)
    counts = {tuple(s): int(run(popns, CTL, ["-C"] + s).stdout) for s in
              (["-p", "udp"], ["-p", "tcp"], ["-f", "ipv6"], ["-s", "192.0.2.1"])}
    assert counts[("-s", "192.0.2.1")] == 0
    assert all(0 < counts[k] < total for k in [("-p", "udp"), ("-p", "tcp"), ("-f", "ipv6")]), counts


@pytest.mark.parametrize("selectors", [["-l", "ctl-one"], ["-l", "ctl-zero"], ["-l", "ctl-one,ctl-last"],
                                       ["-p", "tcp", "-l", "ctl-last"]], ids=_id)
def test_filtered_count_by_label(popns, labelmap, selectors):
    labelmap.skip_unless_intact()
    expected, c = stable_count(popns, selectors)
    assert expected > 0
    assert c.rc == 0 and c.stdout == "%d\n" % expected, c.show("ctl")


@pytest.mark.parametrize("args", [["-C", "-p", "udp"], ["-C", "-s", "10.0.0.0/8"], ["-C", "-m", "1"],
                                  ["-C", "-f", "ipv4"], ["-C", "-o", "json"], ["-S", "-o", "json"],
                                  ["-C", "-o", "metrics"], ["-S", "-o", "metrics"]], ids=_id)
def test_deliberate_difference_conntrack_refuses(scratch_ns, args):
    """The documented addition: conntrack 1.4.7 refuses options on -C and -S
    ("Illegal option" or "Bad parameter", exit 2); ctl answers."""
    o = run(scratch_ns, CONNTRACK, args)
    assert o.rc == 2 and ("Illegal option" in o.stderr or "Bad parameter" in o.stderr), o.show("conntrack")
    c = run(scratch_ns, CTL, args)
    assert c.rc == 0 and c.stderr == "", c.show("ctl")


@pytest.mark.parametrize("args", [["-C", "-z"], ["-C", "-o", "id"], ["-C", "-t", "5"], ["-C", "-i", "3"],
                                  ["-S", "-p", "tcp"], ["-S", "-f", "ipv4"], ["-S", "-o", "id"],
                                  ["-C", "--label-del"], ["-C", "dying"]], ids=_id)
def test_what_conntrack_refuses_on_count_and_stats_stays_refused(scratch_ns, args):
    o = run(scratch_ns, CONNTRACK, args)
    c = run(scratch_ns, CTL, args)
    assert o.rc == 2
    assert c.rc == 2 and c.stdout == "", c.show("ctl")
    strip = lambda s: re.sub(r"^(conntrack v1\.4\.7 \(conntrack-tools\)|ctl v\S+): ", "", s.splitlines()[0])
    assert strip(c.stderr) == strip(o.stderr), c.show("ctl") + o.show("conntrack")


# ------------------------------------------------------------------ json

def test_count_json(popns):
    for _ in range(4):
        n = int(run(popns, CONNTRACK, ["-C"]).stdout)
        c = run(popns, CTL, ["-C", "-o", "json"])
        if n == int(run(popns, CONNTRACK, ["-C"]).stdout):
            break
    assert c.rc == 0, c.show("ctl")
    obj = json.loads(c.stdout)
    assert obj == {"entries": n, "limit": nf_conntrack_max(popns)}
    sel = json.loads(run(popns, CTL, ["-C", "-p", "udp", "-o", "json"]).stdout)
    assert sel == {"selected": stable_count(popns, ["-p", "udp"])[0]}


def stats_lines(ns):
    """conntrack -S: [{name: value}] per CPU, in order."""
    o = run(ns, CONNTRACK, ["-S"])
    assert o.rc == 0
    rows = []
    for line in o.stdout.splitlines():
        fields = line.split()
        assert fields[0].startswith("cpu=")
        rows.append({k: int(v) for k, v in (f.split("=") for f in fields)})
    return rows


def test_stats_json(scratch_ns):
    """An idle namespace: the counters hold still, so they equal
    conntrack's -S exactly."""
    run(scratch_ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.9.8.1", "-d", "10.9.8.2", "--sport", "1",
                                "--dport", "2", "-t", "100"])
    c = run(scratch_ns, CTL, ["-S", "-o", "json"])
    assert c.rc == 0 and c.stderr == "", c.show("ctl")
    assert c.stdout.count("\n") == 1
    obj = json.loads(c.stdout)
    rows = stats_lines(scratch_ns)
    assert obj["cpus"] == rows
    assert obj["all_cpus"] == {k: sum(r[k] for r in rows) for k in rows[0] if k != "cpu"}
    assert obj["entries"] == int(run(scratch_ns, CONNTRACK, ["-C"]).stdout) >= 1
    assert obj["limit"] == nf_conntrack_max(scratch_ns)
    assert obj["expect_entries"] == int(run(scratch_ns, CONNTRACK, ["-C", "expect"]).stdout)


# ------------------------------------------------------------------ metrics

def nf_conntrack_max(ns):
    return int(ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]).stdout)


def test_stats_metrics(scratch_ns):
    run(scratch_ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.9.7.1", "-d", "10.9.7.2", "--sport", "1",
                                "--dport", "2", "--state", "ESTABLISHED", "-t", "100"])
    c = run(scratch_ns, CTL, ["-S", "-o", "metrics"])
    assert c.rc == 0 and c.stderr == "", c.show("ctl")
    m = check_metrics(c.stdout)
    rows = stats_lines(scratch_ns)
    assert m[("ctl_conntrack_entries", frozenset())] == int(run(scratch_ns, CONNTRACK, ["-C"]).stdout)
    assert m[("ctl_conntrack_limit", frozenset())] == nf_conntrack_max(scratch_ns)
    assert m[("ctl_conntrack_expect_entries", frozenset())] == \
        int(run(scratch_ns, CONNTRACK, ["-C", "expect"]).stdout)
    names = [k for k in rows[0] if k != "cpu"]
    assert "insert_failed" in names and "early_drop" in names
    for name in names:
        for row in rows:
            key = ("ctl_conntrack_stat_%s_total" % name, frozenset({("cpu", str(row["cpu"]))}))
            assert m[key] == row[name], key
        assert m[("ctl_conntrack_stat_%s_all_cpus_total" % name, frozenset())] == sum(r[name] for r in rows)
    assert "# TYPE ctl_conntrack_stat_insert_total counter\n" in c.stdout
    assert "# HELP ctl_conntrack_entries " in c.stdout


def test_count_metrics(popns):
    c = run(popns, CTL, ["-C", "-o", "metrics"])
    assert c.rc == 0 and c.stderr == "", c.show("ctl")
    m = check_metrics(c.stdout)
    assert abs(m[("ctl_conntrack_entries", frozenset())] - int(run(popns, CONNTRACK, ["-C"]).stdout)) <= 2
    assert m[("ctl_conntrack_limit", frozenset())] == nf_conntrack_max(popns)


@pytest.mark.parametrize("selectors", [["-p", "udp"], ["-p", "tcp", "--dport", "80"], ["-f", "ipv6"],
                                       ["-s", "10.10.0.0/16", "-u", "SEEN_REPLY"]], ids=_id)
def test_selected_count_metrics(popns, selectors):
    expected, _ = stable_count(popns, selectors)
    c = run(popns, CTL, ["-C"] + selectors + ["-o", "metrics"])
    assert c.rc == 0, c.show("ctl")
    m = check_metrics(c.stdout)
    key = ("ctl_conntrack_selected_entries", frozenset({("selector", " ".join(selectors))}))
    assert m == {key: expected}, c.stdout


@pytest.mark.parametrize("args", [["-L", "-o", "metrics"], ["-D", "-o", "metrics"], ["-E", "-o", "metrics"],
                                  ["-G", "-o", "metrics"], ["-L", "expect", "-o", "metrics"],
                                  ["-S", "expect", "-o", "metrics"], ["-C", "-o", "metrics,extended"],
                                  ["-L", "-o", "json,metrics"]], ids=_id)
def test_metrics_on_a_command_without_metrics(scratch_ns, args):
    c = run(scratch_ns, CTL, args, timeout=5)
    assert c.rc == 2 and c.stdout == "", c.show("ctl")
    assert "-o metrics" in c.stderr, c.show("ctl")


# ------------------------------------------------------------------ --interval

@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1x", "nan", "inf", "0x", "100000"])
@pytest.mark.parametrize("command", ["-S", "-C"])
def test_bad_interval(scratch_ns, command, value):
    c = run(scratch_ns, CTL, [command, "--interval=" + value], timeout=5)
    assert c.rc == 2 and c.stdout == "", c.show("ctl")
    assert "--interval" in c.stderr, c.show("ctl")


@pytest.mark.parametrize("args", [["-L", "--interval", "1"], ["-S", "--interval", "1", "-o", "metrics"],
                                  ["-C", "--interval", "1", "-o", "metrics"], ["-D", "--interval", "1"],
                                  ["-E", "--interval", "1"], ["-C", "expect", "--interval", "1"]], ids=_id)
def test_interval_where_it_does_not_apply(scratch_ns, args):
    c = run(scratch_ns, CTL, args, timeout=5)
    assert c.rc == 2 and c.stdout == "" and "--interval" in c.stderr, c.show("ctl")


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HEADER = re.compile(r"^entries (\d+) of (\d+) \((\d+\.\d\d)% full\)$")


def interval_blocks(ns, args, seconds):
    """Runs ctl ARGS in a pipe for about `seconds`, then SIGINT: (rc,
    stderr, [blocks of lines, each beginning with its timestamp line])."""
    p = ns.spawn([CTL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)   # ip netns exec runs ctl in its place
    out, err = p.communicate(timeout=10)
    text = out.decode()
    blocks = []
    for line in text.splitlines():
        if TIMESTAMP.match(line):
            blocks.append([line])
        else:
            assert blocks, "output before the first timestamp line: %r" % text
            blocks[-1].append(line)
    assert "\x1b" not in text, "escape sequences in a pipe"
    return p.returncode, err.decode(), blocks


def test_stats_interval_blocks_in_a_pipe(scratch_ns):
    run(scratch_ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.9.6.1", "-d", "10.9.6.2", "--sport", "1",
                                "--dport", "2", "-t", "100"])
    rc, err, blocks = interval_blocks(scratch_ns, ["-S", "--interval", "0.4"], 1.5)
    assert rc == 0 and err == "", err
    assert 3 <= len(blocks) <= 6, blocks
    names = [k for k in stats_lines(scratch_ns)[0] if k != "cpu"]
    entries = int(run(scratch_ns, CONNTRACK, ["-C"]).stdout)
    assert entries >= 1
    for i, block in enumerate(blocks):
        h = HEADER.match(block[1])
        assert h, block
        assert int(h.group(1)) == entries and int(h.group(2)) == nf_conntrack_max(scratch_ns)
        assert block[2].split() == ["counter", "total", "per", "second"]
        rows = [line.split() for line in block[3:]]
        assert [r[0] for r in rows] == names
        for r in rows:
            assert r[2] == "-" if i == 0 else re.fullmatch(r"\d+\.\d", r[2]), (i, r)
    insert = [line.split() for line in blocks[-1] if line.startswith("insert ")][0]
    assert int(insert[1]) >= 1


def test_count_interval_follows_the_table(scratch_ns):
    """A block per interval; an entry inserted meanwhile shows up in the
    next blocks' header and selected count."""
    p = scratch_ns.spawn([CTL, "-C", "-p", "udp", "--interval", "0.3"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(0.8)
    base = int(run(scratch_ns, CONNTRACK, ["-C"]).stdout)
    run(scratch_ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.9.5.1", "-d", "10.9.5.2", "--sport", "7",
                                "--dport", "8", "-t", "100"])
    time.sleep(0.8)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0 and err == b"", err
    blocks = [b.splitlines() for b in re.split(r"(?m)^(?=\d{4}-\d\d-\d\dT)", out.decode()) if b]
    assert len(blocks) >= 4
    first, last = blocks[0], blocks[-1]
    assert int(HEADER.match(first[1]).group(1)) == base
    assert int(HEADER.match(last[1]).group(1)) == base + 1
    udp = stable_count(scratch_ns, ["-p", "udp"])[0]
    assert udp >= 1
    assert last[2] == "selected %d" % udp
    assert first[2] == "selected %d" % (udp - 1)


@pytest.mark.parametrize("args", [["-S", "-o", "json"], ["-C", "-o", "json"], ["-C", "-p", "udp", "-o", "json"]],
                         ids=_id)
def test_interval_json_lines(scratch_ns, args):
    """With -o json each interval is one line: the object -o json prints
    alone, with "time" (seconds since the epoch) first; on a pipe no
    timestamp line, no header."""
    p = scratch_ns.spawn([CTL] + args + ["--interval", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.time()
    time.sleep(1.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0 and err == b"", err
    lines = out.decode().splitlines()
    assert 3 <= len(lines) <= 6, lines
    once = json.loads(run(scratch_ns, CTL, args).stdout)
    for line in lines:
        obj = json.loads(line)
        assert list(obj)[0] == "time" and started - 1 <= obj.pop("time") <= time.time() + 1
        assert set(obj) == set(once), (obj, once)
    if "-S" not in args:
        assert json.loads(lines[-1]) | {"time": 0} == once | {"time": 0}


def _tmux(server, *args, check=True):
    return subprocess.run([TMUX, "-L", server] + list(args), capture_output=True, text=True, timeout=10,
                          check=check)


def test_stats_interval_repaints_a_terminal(scratch_ns, tmp_path):
    """Under tmux, as a person would see it: one screen, repainted (one
    header, at the top), the entry count following the table; C-c ends it
    with exit code 0."""
    server = "ctltest-%s" % secrets.token_hex(4)
    status = tmp_path / "status"
    # bash waits for ctl and writes its exit code (bash itself goes on when
    # ctl handled the SIGINT and exited).
    cmd = "bash -c '%s netns exec %s %s -S --interval 0.3; echo $? > %s'" % (IP, scratch_ns.name, CTL, status)
    try:
        _tmux(server, "new-session", "-d", "-s", "live", "-x", "100", "-y", "30", "sh")
        _tmux(server, "respawn-pane", "-k", "-t", "live", cmd)
        time.sleep(1.0)
        screen1 = _tmux(server, "capture-pane", "-p", "-t", "live").stdout.splitlines()
        base = int(HEADER.match(screen1[0]).group(1))
        run(scratch_ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.9.4.1", "-d", "10.9.4.2", "--sport", "7",
                                    "--dport", "8", "--state", "ESTABLISHED", "-t", "100"])
        time.sleep(1.0)
        screen2 = _tmux(server, "capture-pane", "-p", "-t", "live").stdout.splitlines()
        for screen in (screen1, screen2):
            assert HEADER.match(screen[0]), screen
            assert sum(1 for line in screen if HEADER.match(line)) == 1, screen
            assert screen[1].split() == ["counter", "total", "per", "second"], screen
            assert not any(TIMESTAMP.match(line) for line in screen), screen
        assert int(HEADER.match(screen2[0]).group(1)) == base + 1, screen2
        # after the first paint there are rates
        assert re.fullmatch(r"\d+\.\d", screen2[2].split()[2]), screen2
        _tmux(server, "send-keys", "-t", "live", "C-c")
        for _ in range(50):
            if status.exists() and status.read_text().endswith("\n"):
                break
            time.sleep(0.1)
        assert status.read_text() == "0\n"
    finally:
        _tmux(server, "kill-server", check=False)


# ------------------------------------------------------------------ failures

UNPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"]


@pytest.mark.parametrize("args", [["-C", "-o", "json"], ["-C", "-o", "metrics"], ["-S", "-o", "metrics"],
                                  ["-S", "-o", "json"], ["-C", "-p", "udp"], ["-S", "--interval", "1"],
                                  ["-C", "--interval", "1"]], ids=_id)
def test_without_cap_net_admin(scratch_ns, args):
    """No CAP_NET_ADMIN: conntrack's message and exit 1, nothing on stdout
    (no numbers read from /proc as if all were well)."""
    c = run(scratch_ns, CTL, args, wrapper=UNPRIV, timeout=10)
    assert c.rc == 1 and c.stdout == "", c.show("ctl")
    assert c.stderr.endswith("Operation failed: sorry, you must be root or get CAP_NET_ADMIN "
                             "capability to do this\n"), c.show("ctl")


def test_kernel_without_statistics_messages(scratch_ns):
    """A kernel without ctnetlink's statistics (CTL_KERNEL_LACKS=stats):
    -C's metrics and json come from /proc; -S's have nothing to give."""
    env = {"CTL_KERNEL_LACKS": "stats"}
    n = int(scratch_ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).stdout)
    c = run(scratch_ns, CTL, ["-C", "-o", "metrics"], env=env)
    assert c.rc == 0, c.show("ctl")
    m = check_metrics(c.stdout)
    assert m[("ctl_conntrack_entries", frozenset())] == n
    assert m[("ctl_conntrack_limit", frozenset())] == nf_conntrack_max(scratch_ns)
    c = run(scratch_ns, CTL, ["-C", "-o", "json"], env=env)
    assert json.loads(c.stdout) == {"entries": n, "limit": nf_conntrack_max(scratch_ns)}
    c = run(scratch_ns, CTL, ["-S", "-o", "metrics"], env=env)
    assert c.rc == 1 and c.stdout == "" and "Operation failed: Operation not supported" in c.stderr, c.show("ctl")
