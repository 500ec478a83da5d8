"""Differential integration tests: ``ctl`` versus the ``conntrack`` oracle.

Everything runs inside private network namespaces called ``ctltest-<hex>``
that these fixtures create and always delete again (also on failures,
Ctrl-C and SIGTERM); the host's own conntrack table is never listed, changed
or flushed.  Helper processes are killed by pid.

Environment:
  CTL        binary under test (default <repo>/.build/release/ctl); missing
             -> the run fails (pytest exit code 1)
  CONNTRACK  the oracle (default: ``conntrack`` from PATH/sbin, 1.4.7)
  CTLTEST_VERBOSE=1      print the population log
  CTLTEST_MAX_LINES=N    how many stdout lines to show per program on failure
  CTLTEST_STRICT_HELP=1  also compare the -h text (normalised)
  CTLTEST_EMULATED=1     the run is inside an emulated machine (make
             test-kernels sets it in its guests, nowhere else): process time
             limits are TIME_FACTOR times longer, and timeouts compared
             between two listings may drift TIMEOUT_SLACK seconds more
  CTLTEST_SELECT=FILE    run only the tests whose node id (as printed by
             --collect-only, e.g. "test_list.py::test_list[-L]") matches a
             line of FILE; "*" matches any text, "#" starts a comment
             (scripts/kernel-tests.txt is make test-kernels' list)

Run:  cd <repo> && python3 -m pytest -q Tests/integration
      CTL=/usr/sbin/conntrack python3 -m pytest -q Tests/integration  # self-test

Comparison rules (compare()):
  * exit codes must be equal;
  * stderr, line by line and in order, after replacing a leading
    "conntrack v1.4.7 (conntrack-tools): " or "ctl v<...up to the first ': '>: "
    by "PREFIX: ", and, in lines starting with "Try `", the program name
    (conntrack/ctl, optionally with a path) right after ` or ' by "PROG";
  * stdout of listings: compared as multisets of lines after removing every
    "delta-time=N " token and replacing the timeout field (3rd field of a
    default line, 5th of an -o extended line, 1st of an expectation line, the
    value after "-A -t" in -o save, <timeout> in xml) by a placeholder; the
    timeout values of equal lines are then compared pairwise after sorting
    and must be within 2 seconds.  Everything else is byte-exact.
  * -S: same lines (sorted) once every "key=<number>" value except cpu=N is
    replaced by N.  -C, errors, etc.: byte-exact stdout.
  * On a mismatch the oracle is run again: only if its two runs differ (the
    table changed under us) is the whole comparison retried once.
"""

import atexit
import collections
import difflib
import errno
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Tests start processes from several threads at once (namespaces are filled
# in the background); CPython's vfork path then failed once with EFAULT
# ("Bad address") while exec'ing ip(8). Plain fork avoids that.
if hasattr(subprocess, "_USE_VFORK"):
    subprocess._USE_VFORK = False

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SBIN_PATH = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"


def _resolve(prog):
    """Absolute path of a program name or path (None if not found)."""
    if not prog:
        return None
    if "/" in prog:
        p = Path(prog)
        if not p.is_absolute():
            p = Path.cwd() / p
        return str(p)
    return shutil.which(prog, path=SBIN_PATH)


CTL_RAW = os.environ.get("CTL") or str(REPO / ".build" / "release" / "ctl")
CTL = _resolve(CTL_RAW) or CTL_RAW
CONNTRACK = _resolve(os.environ.get("CONNTRACK") or "conntrack") or "conntrack"
IP = _resolve("ip") or "/usr/sbin/ip"
NFT = _resolve("nft") or "/usr/sbin/nft"
SETPRIV = _resolve("setpriv") or "/usr/bin/setpriv"
PYTHON = sys.executable or "python3"


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# True when the suite is self-tested with CTL pointing at conntrack itself.
CTL_IS_ORACLE = _same_file(CTL, CONNTRACK)

# conntrack reads its label map from this file (libnetfilter_conntrack
# default); nft 1.0.6 would read /etc/connlabel.conf but our ruleset uses
# numeric labels, so nft needs no file.
CONNLABEL_CONF = Path("/etc/xtables/connlabel.conf")

VERBOSE = bool(os.environ.get("CTLTEST_VERBOSE"))

# Under software emulation every process start costs about 8x more
# (ctl -V: 0.7 s against 0.09 s on the host), so time limits grow and two
# listings taken one after the other see timeouts further apart. Only there.
EMULATED = bool(os.environ.get("CTLTEST_EMULATED"))
TIME_FACTOR = 5 if EMULATED else 1
# (two namespaces filled side by side can be half a minute apart there)
TIMEOUT_SLACK = 30 if EMULATED else 0


def _selection_patterns():
    path = os.environ.get("CTLTEST_SELECT")
    if not path:
        return None
    pats = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                pats.append(re.compile(".*".join(re.escape(p) for p in line.split("*")) + r"\Z"))
    return pats

# --------------------------------------------------------------------------
# session-level checks
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "oracle_differs: ctl deliberately differs from conntrack "
        "(skipped when CTL is conntrack itself)")


def _sigterm_to_exit(signum, frame):
    # handled like Ctrl-C by pytest, so fixture finalizers (namespace
    # deletion, killing our helpers) and atexit still run
    raise KeyboardInterrupt("SIGTERM")


def pytest_sessionstart(session):
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_exit)
    if os.geteuid() != 0:
        return  # every test gets skipped in pytest_collection_modifyitems
    if not (os.path.isfile(CTL) and os.access(CTL, os.X_OK)):
        pytest.exit(
            "ctl binary under test not found or not executable: %r "
            "(set CTL=/path/to/ctl or build it with `swift build -c release`)"
            % CTL, returncode=1)
    if not (os.path.isfile(CONNTRACK) and os.access(CONNTRACK, os.X_OK)):
        pytest.exit("oracle conntrack binary not found: %r (set CONNTRACK=)"
                    % CONNTRACK, returncode=1)


def pytest_collection_modifyitems(config, items):
    pats = _selection_patterns()
    if pats is not None:
        keep = [i for i in items if any(p.match(i.nodeid) for p in pats)]
        dropped = [i for i in items if not any(p.match(i.nodeid) for p in pats)]
        # A line that selects nothing is a test lost without a word (a
        # renamed test or parameter id): refuse the run instead.
        unmatched = [p.pattern for p in pats if not any(p.match(i.nodeid) for i in items)]
        if unmatched:
            raise pytest.UsageError("CTLTEST_SELECT lines that select no test:\n  " + "\n  ".join(unmatched))
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    skip = None
    if os.geteuid() != 0:
        skip = pytest.mark.skip(
            reason="integration tests need root (they create network "
                   "namespaces and talk to ctnetlink); run them as root")
    for item in items:
        if skip is not None:
            item.add_marker(skip)
        elif CTL_IS_ORACLE and item.get_closest_marker("oracle_differs"):
            item.add_marker(pytest.mark.skip(
                reason="CTL is the conntrack oracle itself: this test checks "
                       "a deliberate ctl-only behaviour"))


def pytest_runtest_logreport(report):
    # A run in an emulated guest is long: show each failure as it happens.
    if EMULATED and report.failed:
        sys.stdout.write("\n---- %s failed (%s):\n%s\n" % (report.nodeid, report.when, report.longreprtext))
        sys.stdout.flush()


def pytest_report_header(config):
    return ["ctl under test: %s%s" % (CTL, "  (== oracle, self-test mode)"
                                      if CTL_IS_ORACLE else ""),
            "oracle: %s" % CONNTRACK]


# --------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------

def _log(msg):
    if VERBOSE:
        sys.stderr.write("[ctltest] %s\n" % msg)


def sh(argv, timeout=30, check=True, input=None):
    """Run a host-side helper command (ip/nft/...) and return CompletedProcess."""
    p = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout * TIME_FACTOR)
    if check and p.returncode != 0:
        raise RuntimeError("command failed (rc=%d): %s\nstdout: %s\nstderr: %s"
                           % (p.returncode, " ".join(argv), p.stdout, p.stderr))
    return p


MAX_SHOWN_LINES = int(os.environ.get("CTLTEST_MAX_LINES", "40"))


class Result(collections.namedtuple("Result", "rc stdout stderr argv")):
    def show(self, label):
        out = self.stdout
        lines = out.splitlines(True)
        if len(lines) > MAX_SHOWN_LINES:
            out = "".join(lines[:MAX_SHOWN_LINES]) + (
                "... (%d more lines; set CTLTEST_MAX_LINES to see more)\n"
                % (len(lines) - MAX_SHOWN_LINES))
        return ("---- %s: rc=%s argv=%r\n---- stdout:\n%s---- stderr:\n%s"
                % (label, self.rc, self.argv, _ensure_nl(out),
                   _ensure_nl(self.stderr)))


def _ensure_nl(s):
    return s if (not s or s.endswith("\n")) else s + "\n(no newline at end)\n"


def run(ns, prog, args, timeout=20, wrapper=(), env=None):
    """Run ``prog args`` inside namespace ``ns`` -> Result(rc, stdout, stderr).

    ``ns`` is a Netns or a namespace name; ``wrapper`` is an optional argv
    prefix executed inside the namespace (e.g. setpriv ...); ``env`` is an
    optional dict of extra environment variables for the program."""
    name = ns.name if isinstance(ns, Netns) else ns
    argv = [IP, "netns", "exec", name] + list(wrapper) + [prog] + list(args)
    timeout *= TIME_FACTOR
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:  # child already killed by run()
        return Result(-9, (e.stdout or b"").decode("utf-8", "replace"),
                      (e.stderr or b"").decode("utf-8", "replace")
                      + "\n<timed out after %ss>\n" % timeout, list(args))
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), list(args))


# --------------------------------------------------------------------------
# network namespaces
# --------------------------------------------------------------------------

_LIVE_NAMESPACES = {}


class Netns:
    """A private network namespace; always destroy() it (fixtures do)."""

    def __init__(self, tag=""):
        self.name = "ctltest-%s" % secrets.token_hex(4)
        self.tag = tag
        self.procs = []
        self.log = []
        sh([IP, "netns", "add", self.name])
        _LIVE_NAMESPACES[self.name] = self

    def exec(self, argv, timeout=30, check=True, input=None):
        return sh([IP, "netns", "exec", self.name] + list(argv),
                  timeout=timeout, check=check, input=input)

    def spawn(self, argv, **kw):
        p = subprocess.Popen([IP, "netns", "exec", self.name] + list(argv), **kw)
        self.procs.append(p)
        return p

    def note(self, msg):
        self.log.append(msg)
        _log("%s: %s" % (self.name, msg))

    def destroy(self):
        # 1. processes we started, by pid
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
            try:
                p.wait(timeout=5)
            except Exception:
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                try:
                    if f:
                        f.close()
                except Exception:
                    pass
        self.procs = []
        # 2. anything still living in *our* private namespace was started by
        #    this test session (e.g. a timed-out helper) -> kill it by pid.
        try:
            pids = sh([IP, "netns", "pids", self.name], check=False).stdout.split()
        except Exception:
            pids = []
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        # 3. the namespace itself
        for _ in range(3):
            p = sh([IP, "netns", "delete", self.name], check=False)
            if p.returncode == 0 or self.name not in _netns_names():
                break
            time.sleep(0.2)
        _LIVE_NAMESPACES.pop(self.name, None)


def check_metrics(text):
    """-o metrics output: promtool (Debian's prometheus package) and
    prometheus_client's parser both accept `text`, and no sample repeats.
    Returns {(sample name, frozenset(labels)): value}."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True, capture_output=True, timeout=30)
    assert p.returncode == 0, "promtool check metrics: rc %d\n%s%s\n%s" % (p.returncode, p.stdout, p.stderr, text)
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, "duplicate sample %r" % (key,)
            samples[key] = sample.value
    assert samples, text
    return samples


def _netns_names():
    out = sh([IP, "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@atexit.register
def _cleanup_leftover_namespaces():
    for ns in list(_LIVE_NAMESPACES.values()):
        try:
            ns.destroy()
        except Exception:
            pass


# --------------------------------------------------------------------------
# connlabel.conf (label names for -o labels)
# --------------------------------------------------------------------------

LABELMAP_CONTENT = """\
# ctl integration test label map -- created by Tests/integration/conftest.py,
# removed again at the end of the test session.
0 ctl-zero
1 ctl-one
5 ctl-five
127 ctl-last
"""
# bit 100 is deliberately left without a name.


class LabelMap:
    def __init__(self):
        self.path = CONNLABEL_CONF
        self.created_file = False
        self.created_dir = False
        self.foreign_is_ours_content = False

    @property
    def ours(self):
        return self.created_file

    def intact(self):
        """Still our file with our content?  (Other tools, e.g. a concurrent
        scripts/capture-fixtures.sh, may replace or delete it meanwhile.)"""
        try:
            return self.created_file and self.path.read_text() == LABELMAP_CONTENT
        except OSError:
            return False

    def skip_unless_intact(self):
        if not self.created_file:
            why = ("%s already existed when the session started" % self.path)
            if self.foreign_is_ours_content:
                why += (" with this suite's content -- a concurrent run, or a "
                        "leftover of a killed run (then delete it)")
            pytest.skip(why + "; label names unknown / file not ours")
        if not self.intact():
            pytest.skip("%s was changed or removed by another process during "
                        "the run" % self.path)

    def setup(self):
        d = self.path.parent
        if not d.exists():
            d.mkdir(mode=0o755)
            self.created_dir = True
        try:
            fd = os.open(str(self.path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
            # someone else's file (the user's, a concurrent test run's, or a
            # leftover of a killed run of ours): never touch it
            try:
                self.foreign_is_ours_content = \
                    self.path.read_text() == LABELMAP_CONTENT
            except OSError:
                pass
            return self
        with os.fdopen(fd, "w") as f:
            f.write(LABELMAP_CONTENT)
        self.created_file = True
        return self

    def teardown(self):
        if self.created_file:
            try:
                if self.path.read_text() == LABELMAP_CONTENT:
                    self.path.unlink()
            except OSError:
                pass
        if self.created_dir:
            try:
                self.path.parent.rmdir()  # only if empty
            except OSError:
                pass


@pytest.fixture(scope="session")
def labelmap():
    lm = LabelMap().setup()
    try:
        yield lm
    finally:
        lm.teardown()


# --------------------------------------------------------------------------
# population
# --------------------------------------------------------------------------

SYSCTLS = {
    "net.netfilter.nf_conntrack_acct": "1",
    "net.netfilter.nf_conntrack_timestamp": "1",
    # keep the real-traffic entries alive for the whole session
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "3600",
    "net.netfilter.nf_conntrack_tcp_timeout_close": "3600",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",
    "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": "3600",
    "net.netfilter.nf_conntrack_tcp_timeout_last_ack": "3600",
    "net.netfilter.nf_conntrack_udp_timeout": "3600",
    "net.netfilter.nf_conntrack_udp_timeout_stream": "3600",
    "net.netfilter.nf_conntrack_icmp_timeout": "3600",
    "net.netfilter.nf_conntrack_icmpv6_timeout": "3600",
}

NFT_RULESET = """\
table inet ctltest {
	ct helper ftp-x {
		type "ftp" protocol tcp
		l3proto inet
	}
	chain raw_out {
		type filter hook output priority raw; policy accept;
		udp dport 5301 ct zone set 7
		udp sport 5301 ct zone set 7
		tcp dport 5302 ct zone set 7
		tcp sport 5302 ct zone set 7
	}
	chain out {
		type filter hook output priority filter; policy accept;
		ct state new tcp dport 5003 ct mark set 0x2a
		ct state new tcp dport 5007 ct mark set 0xffffffff
		ct state new tcp dport 5004 ct label set 1
		ct state new tcp dport 5004 ct label set 5
		ct state new tcp dport 5005 ct label set 100
		ct state new tcp dport 5006 ct label set 127
		ct state new tcp dport 2121 ct helper set "ftp-x"
		ct state established,related,new,invalid,untracked counter
	}
	chain pre {
		type filter hook prerouting priority filter; policy accept;
		ct state established,related,new,invalid,untracked counter
	}
}
table ip ctlnat4 {
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr 10.99.0.1 tcp dport 8080 dnat to 10.99.0.2:8081
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.99.0.1 ip daddr 10.99.0.2 tcp dport 9000 snat to 10.99.0.3
	}
}
table ip6 ctlnat6 {
	chain out {
		type nat hook output priority -100; policy accept;
		ip6 daddr fd00::1 tcp dport 8080 dnat to [fd00::2]:8081
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip6 saddr fd00::1 ip6 daddr fd00::2 udp dport 9001 snat to fd00::3
	}
}
"""

T = ["-t", "3000"]


def _tcp(src, dst, sport, dport, state, *extra):
    return ["-p", "tcp", "-s", src, "-d", dst, "--sport", str(sport),
            "--dport", str(dport), "--state", state] + T + list(extra)


# (label, conntrack -I arguments)
INSERTS = [
    # tcp in every state conntrack 1.4.7 accepts
    *[("tcp-%s" % st, _tcp("10.10.0.1", "10.10.0.2", 1000 + i, 80, st))
      for i, st in enumerate(["NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
                              "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                              "TIME_WAIT", "CLOSE", "LISTEN", "SYN_SENT2"])],
    ("tcp6-established", _tcp("fd00:10::1", "fd00:10::2", 2000, 443, "ESTABLISHED")),
    ("tcp6-syn-sent", _tcp("fd00:10::1", "fd00:10::2", 2001, 443, "SYN_SENT")),
    ("tcp-assured-mark", _tcp("10.10.1.1", "10.10.1.2", 3000, 22, "ESTABLISHED",
                              "-u", "ASSURED,SEEN_REPLY", "-m", "7")),
    ("tcp-mark-max", _tcp("10.10.1.1", "10.10.1.2", 3001, 22, "ESTABLISHED",
                          "-m", "4294967295")),
    ("tcp-assured-unreplied", _tcp("10.10.1.1", "10.10.1.2", 3002, 22,
                                   "ESTABLISHED", "-u", "ASSURED")),
    ("tcp-zone", _tcp("10.10.2.1", "10.10.2.2", 4000, 25, "ESTABLISHED", "-w", "5")),
    ("tcp-zone-max", _tcp("10.10.2.1", "10.10.2.2", 4001, 25, "ESTABLISHED",
                          "-w", "65535")),
    ("tcp-orig-zone", _tcp("10.10.2.1", "10.10.2.2", 4002, 25, "ESTABLISHED",
                           "--orig-zone", "11")),
    ("tcp-reply-zone", _tcp("10.10.2.1", "10.10.2.2", 4003, 25, "ESTABLISHED",
                            "--reply-zone", "12")),
    ("tcp6-zone-mark", _tcp("fd00:10::1", "fd00:10::2", 4004, 25, "ESTABLISHED",
                            "-w", "9", "-m", "0x10")),
    ("tcp-big-timeout", ["-p", "tcp", "-s", "10.10.3.1", "-d", "10.10.3.2",
                         "--sport", "5000", "--dport", "80", "--state",
                         "ESTABLISHED", "-t", "4294967295"]),
    ("tcp-reply-ports", ["-p", "tcp", "-s", "10.10.3.1", "-d", "10.10.3.2",
                         "--sport", "5001", "--dport", "80", "--reply-port-src",
                         "8080", "--reply-port-dst", "5001", "-r", "10.10.3.2",
                         "-q", "10.10.3.1", "--state", "ESTABLISHED"] + T),
    ("udp", ["-p", "udp", "-s", "10.20.0.1", "-d", "10.20.0.2", "--sport", "53",
             "--dport", "53"] + T),
    ("udp-seen-reply", ["-p", "udp", "-s", "10.20.0.1", "-d", "10.20.0.2",
                        "--sport", "54", "--dport", "53", "-u", "SEEN_REPLY"] + T),
    ("udp-extremes", ["-p", "udp", "-s", "0.0.0.0", "-d", "255.255.255.255",
                      "--sport", "0", "--dport", "65535"] + T),
    ("udp-fixed-timeout", ["-p", "udp", "-s", "10.20.0.3", "-d", "10.20.0.4",
                           "--sport", "1", "--dport", "2", "-u",
                           "FIXED_TIMEOUT"] + T),
    ("udp6-mapped", ["-p", "udp", "-s", "2001:db8:0:0:1:0:0:1", "-d",
                     "::ffff:10.0.0.1", "--sport", "1", "--dport", "2"] + T),
    ("udp6-compat", ["-p", "udp", "-s", "2001:db8:0:1:1:1:1:1", "-d",
                     "::1.2.3.4", "--sport", "1", "--dport", "2"] + T),
    ("udp6-full", ["-p", "udp", "-s", "fe80::1", "-d", "2001:db8:1:2:3:4:5:6",
                   "--sport", "1", "--dport", "2"] + T),
    ("udp6-any", ["-p", "udp", "-s", "::", "-d", "1::", "--sport", "1",
                  "--dport", "2"] + T),
    ("udplite", ["-p", "udplite", "-s", "10.20.1.1", "-d", "10.20.1.2",
                 "--sport", "1000", "--dport", "2000"] + T),
    ("udplite6", ["-p", "udplite", "-s", "fd00:20::1", "-d", "fd00:20::2",
                  "--sport", "1000", "--dport", "2000"] + T),
    *[("sctp-%s" % st, ["-p", "sctp", "-s", "10.30.0.1", "-d", "10.30.0.2",
                        "--sport", str(6000 + i), "--dport", "36412", "--state", st,
                        "--orig-vtag", "0x1234", "--reply-vtag", "4294967295"] + T)
      for i, st in enumerate(["NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED",
                              "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD",
                              "SHUTDOWN_ACK_SENT"])],
    ("sctp6", ["-p", "sctp", "-s", "fd00:30::1", "-d", "fd00:30::2", "--sport",
               "7000", "--dport", "36412", "--state", "ESTABLISHED",
               "--orig-vtag", "1", "--reply-vtag", "2"] + T),
    # 6.18 has no DCCP tracker: the entry is stored by the generic tracker
    # (protonum 33, no ports, no state); Debian's 6.1 and 6.12 (make
    # test-kernels) track it: ports, state OPEN, role client
    ("dccp", ["-p", "dccp", "-s", "10.40.0.1", "-d", "10.40.0.2", "--sport",
              "5004", "--dport", "5005", "--state", "OPEN", "--role", "client"] + T),
    ("gre", ["-p", "gre", "-s", "10.50.0.1", "-d", "10.50.0.2", "--srckey",
             "0x10", "--dstkey", "0xffff"] + T),
    ("gre6", ["-p", "gre", "-s", "fd00:50::1", "-d", "fd00:50::2", "--srckey",
              "1", "--dstkey", "2"] + T),
    ("icmp-echo", ["-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2",
                   "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "77"] + T),
    ("icmp-timestamp", ["-p", "icmp", "-s", "10.60.0.1", "-d", "10.60.0.2",
                        "--icmp-type", "13", "--icmp-code", "0", "--icmp-id",
                        "0"] + T),
    ("icmpv6-echo", ["-p", "icmpv6", "-s", "fd00:60::1", "-d", "fd00:60::2",
                     "--icmpv6-type", "128", "--icmpv6-code", "0",
                     "--icmpv6-id", "65535"] + T),
    ("unknown-200", ["-p", "200", "-s", "10.70.0.1", "-d", "10.70.0.2"] + T),
    ("unknown-0", ["-p", "0", "-s", "10.70.0.1", "-d", "10.70.0.3"] + T),
    ("unknown-255", ["-p", "255", "-s", "10.70.0.1", "-d", "10.70.0.4"] + T),
    ("esp-by-name", ["-p", "esp", "-s", "10.70.0.1", "-d", "10.70.0.5"] + T),
    ("unknown6-253", ["-p", "253", "-s", "fd00:70::1", "-d", "fd00:70::2"] + T),
]

# entries that get labels by name from our own label map: conntrack 1.4.7
# rejects --label with -I ("Illegal option `--label' with this command"),
# so they are created with -I and then labelled with -U --label-add.
LABEL_UPDATES = [
    ("tcp-labels-by-name",
     _tcp("10.80.0.1", "10.80.0.2", 8000, 80, "ESTABLISHED"),
     ["-p", "tcp", "-s", "10.80.0.1", "-d", "10.80.0.2", "--sport", "8000",
      "--dport", "80", "--label-add", "ctl-one,ctl-last"]),
    ("tcp6-label-zero",
     _tcp("fd00:80::1", "fd00:80::2", 8001, 80, "ESTABLISHED"),
     ["-p", "tcp", "-s", "fd00:80::1", "-d", "fd00:80::2", "--sport", "8001",
      "--dport", "80", "--label-add", "ctl-zero"]),
]

# Things we know may be missing; population never fails because of them.
EXPECTED_FEATURES = {
    # substring that must appear in `conntrack -L -o extended,id` (shared ns)
    "tcp established (real traffic)": "ESTABLISHED src=127.0.0.1 dst=127.0.0.1",
    "tcp TIME_WAIT (real)": "TIME_WAIT src=127.0.0.1",
    "tcp CLOSE after RST (real)": "CLOSE src=127.0.0.1",
    "udp unreplied (real)": "dport=5399 packets=1",
    "ipv6 tcp (real)": "ESTABLISHED src=::1 dst=::1",
    "icmp (real)": "icmp     1 ",
    "icmpv6 (real)": "icmpv6   58 ",
    "ct mark 0x2a": "mark=42 ",
    "ct zone 7": "zone=7 ",
    "ftp helper": "helper=ftp ",
    "dnat": "src=10.99.0.2 dst=10.99.0.1 sport=8081",
    "snat": "src=10.99.0.2 dst=10.99.0.3 sport=9000",
    "counters": "packets=",
    "sctp": "sctp     132 ",
    "gre": "gre      47 ",
    "udplite": "udplite  136 ",
    "unknown proto": "unknown  200 ",
    "zone-orig": "zone-orig=11 ",
    "zone-reply": "zone-reply=12 ",
}


class Population:
    def __init__(self, ns):
        self.ns = ns
        self.traffic = None
        self.failed_inserts = []   # (label, stderr)
        self.traffic_log = ""


def _start_traffic(ns, pop):
    p = ns.spawn([PYTHON, str(HERE / "traffic.py")], stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pop.traffic = p
    deadline = time.time() + 30
    line = b""
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline()
            break
        if p.poll() is not None:
            break
    if line.strip() != b"READY":
        err = b""
        if p.poll() is not None:
            err = p.stderr.read()
        raise RuntimeError("traffic.py did not become ready in %s (got %r, "
                           "stderr %r)" % (ns.name, line, err))
    # collect the (non-fatal) step failure messages printed so far
    msgs = []
    while select.select([p.stderr], [], [], 0.05)[0]:
        chunk = os.read(p.stderr.fileno(), 65536)
        if not chunk:
            break
        msgs.append(chunk.decode("utf-8", "replace"))
    pop.traffic_log = "".join(msgs)
    for m in pop.traffic_log.splitlines():
        ns.note(m)


def populate(ns, traffic=True, inserts=True, labels=None):
    """Configure and populate a freshly created namespace.  Returns Population."""
    pop = Population(ns)
    ns.exec(["ip", "link", "set", "lo", "up"])
    for a in ("10.99.0.1/32", "10.99.0.2/32", "10.99.0.3/32"):
        ns.exec(["ip", "addr", "add", a, "dev", "lo"])
    for a in ("fd00::1/128", "fd00::2/128", "fd00::3/128"):
        ns.exec(["ip", "-6", "addr", "add", a, "dev", "lo", "nodad"])
    ns.exec(["sysctl", "-q", "-w"] + ["%s=%s" % kv for kv in SYSCTLS.items()])
    ns.exec([NFT, "-f", "-"], input=NFT_RULESET)
    if traffic:
        _start_traffic(ns, pop)
    if inserts:
        todo = [(label, ["-I"] + args) for label, args in INSERTS]
        if labels is not None and labels.ours:
            for label, ins, upd in LABEL_UPDATES:
                todo += [(label, ["-I"] + ins), (label, ["-U"] + upd)]
        for label, args in todo:
            r = run(ns, CONNTRACK, args, timeout=10)
            if r.rc != 0:
                pop.failed_inserts.append((label, r.stderr.strip()))
                ns.note("conntrack %s for %s failed (rc %s): %s"
                        % (args[0], label, r.rc, r.stderr.strip()))
    # let everything settle (TIME_WAIT transitions etc.)
    time.sleep(0.2)
    return pop


@pytest.fixture(scope="session")
def popns(labelmap):
    """The shared, richly populated namespace.  Tests must not modify it."""
    ns = Netns("shared")
    try:
        ns.population = populate(ns, traffic=True, inserts=True, labels=labelmap)
        yield ns
    finally:
        ns.destroy()


@pytest.fixture
def make_ns(labelmap):
    """Factory for throw-away populated namespaces (destroyed after the test)."""
    created = []

    def factory(traffic=True, inserts=True):
        ns = Netns("fresh")
        created.append(ns)
        ns.population = populate(ns, traffic=traffic, inserts=inserts,
                                 labels=labelmap)
        return ns

    try:
        yield factory
    finally:
        for ns in created:
            ns.destroy()


@pytest.fixture(scope="module")
def scratch_ns():
    """An empty namespace (conntrack hooks loaded, no entries) for commands
    that might modify state if they were (unexpectedly) executed."""
    ns = Netns("scratch")
    try:
        ns.exec(["ip", "link", "set", "lo", "up"])
        ns.exec([NFT, "-f", "-"], input=NFT_RULESET)
        yield ns
    finally:
        ns.destroy()


# --------------------------------------------------------------------------
# normalisation + comparison
# --------------------------------------------------------------------------

_PREFIX_ORACLE_RE = re.compile(r"^conntrack v1\.4\.7 \(conntrack-tools\): ")
_PREFIX_CTL_RE = re.compile(r"^ctl v.*?: ")
_PROG_IN_TRY_RE = re.compile(r"(?<=[`'])[^\s`']*?\b(?:conntrack|ctl)(?= )")
_DELTA_RE = re.compile(r"delta-time=\d+ ?")
_L3NAMES = {"ipv4", "ipv6", "unknown"}


def normalize_stderr(text):
    out = []
    for line in text.splitlines():
        line = _PREFIX_ORACLE_RE.sub("PREFIX: ", line)
        line = _PREFIX_CTL_RE.sub("PREFIX: ", line)
        if line.startswith("Try `"):
            line = _PROG_IN_TRY_RE.sub("PROG", line)
        out.append(line)
    return out


def _timeout_span(line):
    """(start, end) of the timeout field of a listing line, or None."""
    toks = [(m.group(), m.span()) for m in re.finditer(r"\S+", line)]
    words = [t for t, _ in toks]
    if len(words) >= 5 and words[0] in _L3NAMES and words[1].isdigit() \
            and words[3].isdigit() and words[4].isdigit():
        return toks[4][1]                      # -o extended
    if len(words) >= 3 and not words[0].isdigit() and words[1].isdigit() \
            and words[2].isdigit():
        return toks[2][1]                      # default format
    if len(words) >= 2 and words[0].isdigit() and words[1].startswith("proto="):
        return toks[0][1]                      # expectation line
    if len(words) >= 3 and words[0] in ("-A", "-D") and words[1] == "-t" \
            and words[2].isdigit():
        return toks[2][1]                      # -o save (-D prints "-D -t")
    return None


_XML_TIMEOUT_RE = re.compile(r"<timeout>(\d+)</timeout>")
_XML_DELTA_RE = re.compile(r"<deltatime>\d+</deltatime>")


def normalize_listing(text):
    """-> list of (normalised line, [timeout values])."""
    res = []
    for line in text.splitlines():
        line = _DELTA_RE.sub("", line)
        line = _XML_DELTA_RE.sub("", line)
        vals = []
        span = _timeout_span(line)
        if span:
            vals.append(int(line[span[0]:span[1]]))
            line = line[:span[0]] + "<T>" + line[span[1]:]
        else:
            def _x(m):
                vals.append(int(m.group(1)))
                return "<timeout><T></timeout>"
            line = _XML_TIMEOUT_RE.sub(_x, line)
        res.append((line, vals))
    return res


_STAT_NUM_RE = re.compile(r"(?<=[a-z_]=)\d+")


def normalize_stats(text):
    """-S output: keep key names/layout (and cpu=N), replace counter values."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(cpu=\d+\s+)(.*)$", line)
        if m:
            out.append(m.group(1) + _STAT_NUM_RE.sub("N", m.group(2)))
        else:
            out.append(_STAT_NUM_RE.sub("N", line))
    return out


def _clip(lines, n):
    if len(lines) <= n:
        return "\n".join(lines)
    return "\n".join(lines[:n] + ["    ... (%d more)" % (len(lines) - n)])


def _listing_diff(a_text, b_text, tolerance):
    """Compare two listings; return None if equivalent else a message."""
    a = normalize_listing(a_text)
    b = normalize_listing(b_text)
    tolerance += TIMEOUT_SLACK
    ca = collections.Counter(l for l, _ in a)
    cb = collections.Counter(l for l, _ in b)
    if ca != cb:
        only_a = sorted((ca - cb).elements())
        only_b = sorted((cb - ca).elements())
        return ("stdout lines differ (as multisets, after normalisation):\n"
                "  only in conntrack (%d):\n%s\n  only in ctl (%d):\n%s"
                % (len(only_a), _clip(["    " + l for l in only_a], 20),
                   len(only_b), _clip(["    " + l for l in only_b], 20)))
    ga, gb = collections.defaultdict(list), collections.defaultdict(list)
    for l, v in a:
        ga[l].append(v)
    for l, v in b:
        gb[l].append(v)
    for l in ga:
        va, vb = sorted(ga[l]), sorted(gb[l])
        for x, y in zip(va, vb):
            if len(x) != len(y) or any(abs(i - j) > tolerance for i, j in zip(x, y)):
                return ("timeout values differ by more than %ss for line:\n  %s\n"
                        "  conntrack: %s\n  ctl:       %s" % (tolerance, l, va, vb))
    return None


def _diff_results(o, c, stdout_mode, tolerance):
    problems = []
    if o.rc != c.rc:
        problems.append("exit codes differ: conntrack=%s ctl=%s" % (o.rc, c.rc))
    eo, ec = normalize_stderr(o.stderr), normalize_stderr(c.stderr)
    if eo != ec:
        problems.append("stderr differs (normalised):\n" + "\n".join(
            difflib.unified_diff(eo, ec, "conntrack", "ctl", lineterm="")))
    if stdout_mode == "listing":
        d = _listing_diff(o.stdout, c.stdout, tolerance)
        if d:
            problems.append(d)
    elif stdout_mode == "stats":
        so, sc = normalize_stats(o.stdout), normalize_stats(c.stdout)
        if sorted(so) != sorted(sc):
            problems.append("-S output shape differs:\n" + "\n".join(
                difflib.unified_diff(so, sc, "conntrack", "ctl", lineterm="")))
    elif stdout_mode == "exact":
        if o.stdout != c.stdout:
            problems.append("stdout differs:\n" + "\n".join(difflib.unified_diff(
                o.stdout.splitlines(), c.stdout.splitlines(), "conntrack", "ctl",
                lineterm="")))
    elif stdout_mode == "ignore":
        pass
    else:
        raise ValueError(stdout_mode)
    return problems


def compare(ns, args, stdout_mode="listing", tolerance=2, wrapper=(), timeout=20,
            retry=True, env=None):
    """Run the oracle and ctl with the same ``args`` in ``ns`` and assert that
    they behave the same (see module docstring / report for the rules).

    stdout_mode: "listing" (multiset of lines, timeouts +-tolerance,
    delta-time removed), "exact", "stats" (-S shape) or "ignore".
    ``env``: extra environment for ctl only.
    Returns (oracle_result, ctl_result)."""
    o = run(ns, CONNTRACK, args, timeout=timeout, wrapper=wrapper)
    c = run(ns, CTL, args, timeout=timeout, wrapper=wrapper, env=env)
    problems = _diff_results(o, c, stdout_mode, tolerance)
    if problems and retry:
        # Was the table changing under us?  Re-run the oracle: if it agrees
        # with its own first run the difference is real -> no retry.
        o2 = run(ns, CONNTRACK, args, timeout=timeout, wrapper=wrapper)
        if _diff_results(o, o2, stdout_mode, tolerance):
            o = run(ns, CONNTRACK, args, timeout=timeout, wrapper=wrapper)
            c = run(ns, CTL, args, timeout=timeout, wrapper=wrapper, env=env)
            problems = _diff_results(o, c, stdout_mode, tolerance)
    if problems:
        pytest.fail("ctl differs from conntrack for args %r (namespace %s):\n%s\n\n%s\n%s"
                    % (args, getattr(ns, "name", ns), "\n\n".join(problems),
                       o.show("conntrack"), c.show("ctl")), pytrace=False)
    return o, c
