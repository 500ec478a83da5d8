"""--netns NAME|PATH: ctl joins the network namespace before it opens a
socket and works there as `ip netns exec NAME ctl ...` would.

Compared here: the two forms give the same stdout, stderr and exit code
for listings, counts, a -R file and events (a named namespace under
/run/netns and the /proc/PID/ns/net path of a process inside it); and a
missing or wrong namespace is a clear error with exit code 1, before
anything else happens.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import CONNTRACK, CTL, IP, _diff_results, run

# ctl-only behaviour: skipped when CTL is conntrack itself.
pytestmark = pytest.mark.oracle_differs


# "Outside" runs start in another, empty test namespace, never in the
# host's: if --netns did nothing, they would see that empty table.


@pytest.mark.parametrize("args", [
    ["-L"],
    ["-L", "-o", "extended,id", "-p", "tcp"],
    ["-L", "expect"],
    ["-C"],
    ["-G", "-p", "udp", "-s", "10.20.0.1", "-d", "10.20.0.2", "--sport", "53", "--dport", "53"],
    ["-L", "--bogus"],
], ids=lambda a: " ".join(a))
def test_same_as_ip_netns_exec(popns, scratch_ns, args):
    inside = run(popns, CTL, args)
    outside = run(scratch_ns, CTL, ["--netns", popns.name] + args)
    problems = _diff_results(inside, outside, "listing", 2)
    assert not problems, "\n".join(problems) + inside.show("ip netns exec") + outside.show("--netns")
    if args == ["-L"]:
        assert inside.stdout.count("\n") > 20, inside.show("ctl")


def test_path_form_and_equals_form(popns, scratch_ns):
    holder = subprocess.Popen([IP, "netns", "exec", popns.name, "sleep", "30"])
    try:
        path = "/proc/%d/ns/net" % holder.pid
        target = os.stat("/run/netns/" + popns.name).st_ino
        for _ in range(100):
            try:
                if os.stat(path).st_ino == target:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the holder process never entered %s" % popns.name)
        inside = run(popns, CTL, ["-L", "-o", "id"])
        for form in (["--netns", path], ["--netns=" + path], ["-L", "--netns=" + popns.name]):
            args = form + (["-o", "id"] if form[0] == "-L" else ["-L", "-o", "id"])
            outside = run(scratch_ns, CTL, args)
            problems = _diff_results(inside, outside, "listing", 2)
            assert not problems, "%r\n%s" % (args, "\n".join(problems))
    finally:
        holder.kill()
        holder.wait()


def test_load_file(make_ns, scratch_ns, tmp_path):
    ns = make_ns(traffic=False, inserts=False)
    path = tmp_path / "lines"
    path.write_text("-I -p udp -s 10.1.1.1 -d 10.1.1.2 --sport 1 --dport 2 -t 100\n")
    r = run(scratch_ns, CTL, ["--netns", ns.name, "-R", str(path)])
    assert r.rc == 0, r.show("ctl")
    listed = run(ns, CTL, ["-L", "-p", "udp"])
    assert "src=10.1.1.1 dst=10.1.1.2 sport=1 dport=2" in listed.stdout, listed.show("ctl")
    # and the namespace ctl started in was not touched
    assert "10.1.1.1" not in run(scratch_ns, CTL, ["-L"]).stdout


@pytest.mark.parametrize("netns", [False, True], ids=["plain", "--netns"])
def test_load_file_name_not_utf8(make_ns, scratch_ns, tmp_path, netns):
    """A -R file whose name is not UTF-8 is opened by its bytes, as
    conntrack opens it; with --netns too (which takes itself out of argv
    without re-encoding the other words)."""
    ns = make_ns(traffic=False, inserts=False)
    path = os.path.join(os.fsencode(tmp_path), b"lines-\xe9")
    with open(path, "wb") as f:
        f.write(b"-I -p udp -s 10.1.1.3 -d 10.1.1.4 --sport 1 --dport 2 -t 100\n")
    name = os.fsdecode(path)
    r = run(scratch_ns, CTL, ["--netns", ns.name, "-R", name]) if netns else run(ns, CTL, ["-R", name])
    assert r.rc == 0 and r.stderr == "", r.show("ctl")
    listed = run(ns, CONNTRACK, ["-L", "-p", "udp"])
    assert "src=10.1.1.3 dst=10.1.1.4 sport=1 dport=2" in listed.stdout, listed.show("conntrack")
    # conntrack reads the same file by the same name
    other = make_ns(traffic=False, inserts=False)
    o = run(other, CONNTRACK, ["-R", name])
    assert o.rc == 0, o.show("conntrack")


def test_events(make_ns, scratch_ns):
    ns = make_ns(traffic=False, inserts=False)
    p = subprocess.Popen([IP, "netns", "exec", scratch_ns.name, CTL, "--netns", ns.name, "-E", "-e", "NEW"],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        r = run(ns, CTL, ["-I", "-p", "udp", "-s", "10.2.2.1", "-d", "10.2.2.2", "--sport", "5",
                          "--dport", "6", "-t", "100"])
        assert r.rc == 0, r.show("ctl -I")
        time.sleep(0.5)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    assert "[NEW] udp      17 100 src=10.2.2.1 dst=10.2.2.2 sport=5 dport=6" in out, out + err
    assert err.strip().endswith("1 flow events have been shown."), err


@pytest.mark.parametrize("name,words", [
    ("ctltest-no-such-namespace", "No such file or directory"),
    ("/nonexistent/ns", "No such file or directory"),
    ("/etc/hostname", "Invalid argument"),
])
def test_bad_namespace(scratch_ns, name, words):
    r = run(scratch_ns, CTL, ["--netns", name, "-L"])
    assert r.rc == 1 and r.stdout == "", r.show("ctl")
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "network namespace `%s'" % name in lines[0] and words in lines[0], r.show("ctl")


def test_missing_argument(scratch_ns):
    r = run(scratch_ns, CTL, ["-L", "--netns"])
    assert r.rc == 2 and "option `--netns' requires an argument" in r.stderr, r.show("ctl")
    r = run(scratch_ns, CTL, ["--netns=", "-L"])
    assert r.rc == 2, r.show("ctl")


def test_not_in_a_load_file(make_ns, tmp_path):
    ns = make_ns(traffic=False, inserts=False)
    path = tmp_path / "lines"
    path.write_text("-F --netns %s\n" % ns.name)
    r = run(ns, CTL, ["-R", str(path)])
    assert r.rc == 2 and "unknown option `--netns" in r.stderr, r.show("ctl")
