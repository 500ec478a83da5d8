"""Black-box fuzzing of ctl's argument parser and of -R files.

Random command lines built from ctl's real option names (Arguments.swift's
baseOptions and protocolOptions) and values both plausible and not
(addresses, CIDRs, huge, negative and hex numbers, protocol, state, status
and label names, junk bytes, empty strings) run in an EMPTY private
namespace, as do random -R files of such lines. Each run must exit 0, 1 or 2
on its own, say something on stderr when nonzero, and never die of a signal.
A run still alive after 10 seconds gets SIGINT and is a hang, unless it
could be an event listener (-E waits for events; the generator leaves it
out of command lines and only -R files, which refuse it, name it).

CTLTEST_FUZZ_SECONDS (default 30) bounds the run; CTLTEST_FUZZ_SEED
reproduces one (the seed is printed).  No value starts with "--", so no
argument can become ctl's --netns (which could enter another namespace).
"""

import os
import random
import signal
import subprocess
import tempfile
import time

from conftest import CTL, IP, Netns

SECONDS = float(os.environ.get("CTLTEST_FUZZ_SECONDS", "30"))

COMMANDS = ["-L", "-I", "-A", "-D", "-U", "-G", "-F", "-C", "-S", "-V", "-h",
            "--dump", "--create", "--add", "--delete", "--update", "--get",
            "--flush", "--counter", "--stats", "--version", "--help"]
OPTIONAL_ARG = {"-L", "-I", "-A", "-D", "-U", "-G", "-F", "-C", "--dump", "--create",
                "--add", "--delete", "--update", "--get", "--flush", "--counter",
                "-i", "--id", "-n", "--src-nat", "-g", "--dst-nat", "-j", "--any-nat",
                "--label-del"}
WITH_ARG = ["-s", "--orig-src", "--src", "-d", "--orig-dst", "--dst", "-r", "--reply-src",
            "-q", "--reply-dst", "-p", "--protonum", "-t", "--timeout", "-u", "--status",
            "-w", "--zone", "-e", "--event-mask", "--tuple-src", "--tuple-dst", "--mask-src",
            "--mask-dst", "-a", "--nat-range", "-m", "--mark", "-c", "--secmark", "-f",
            "--family", "-o", "--output", "-b", "--buffer-size", "-l", "--label",
            "--label-add", "--orig-zone", "--reply-zone", "-[", "-]", "-{", "-}", "-<", "-(", "-)"]
FLAGS = ["-z", "--zero", "-i", "--id", "-n", "-g", "-j", "--src-nat", "--dst-nat",
         "--any-nat", "--label-del", "->"]
PORTS = ["--orig-port-src", "--sport", "--orig-port-dst", "--dport", "--reply-port-src",
         "--reply-port-dst", "--mask-port-src", "--mask-port-dst", "--tuple-port-src",
         "--tuple-port-dst"]
PROTO_OPTIONS = {
    "tcp": PORTS + ["--state"], "udp": PORTS, "udplite": PORTS,
    "sctp": PORTS + ["--state", "--orig-vtag", "--reply-vtag"],
    "dccp": PORTS + ["--state", "--role"],
    "icmp": ["--icmp-type", "--icmp-code", "--icmp-id"],
    "icmpv6": ["--icmpv6-type", "--icmpv6-code", "--icmpv6-id"],
    "gre": ["--orig-key-src", "--srckey", "--orig-key-dst", "--dstkey", "--reply-key-src",
            "--reply-key-dst", "--mask-key-src", "--mask-key-dst", "--tuple-key-src",
            "--tuple-key-dst"],
}
PROTOCOLS = list(PROTO_OPTIONS) + ["6", "17", "1", "58", "47", "132", "33", "136", "0", "255",
                                   "256", "-1", "unknown", "TCP", "ip", "ipv6-icmp"]
STATES = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
          "TIME_WAIT", "CLOSE", "LISTEN", "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED",
          "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT",
          "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "TIMEWAIT", "established"]
WORDS = ["ASSURED", "SEEN_REPLY", "FIXED_TIMEOUT", "EXPECTED", "UNSET", "ASSURED,SEEN_REPLY",
         "NEW", "UPDATE", "DESTROY", "ALL", "NEW,DESTROY", "extended", "xml", "timestamp", "id",
         "ktimestamp", "labels", "save", "userspace", "json", "xml,extended", "json,xml",
         "ipv4", "ipv6", "inet", "inet6", "client", "server", "zero", "last", "a,b",
         "10.0.0.1-10.0.0.9", "10.0.0.1:80", "[::1]:80"]
ADDRESSES = ["10.0.0.1", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "256.1.1.1",
             "::", "::1", "fe80::1", "2001:db8::1:2:3:4:5", "::ffff:1.2.3.4", "1::2::3",
             "10.0.0.0/8", "10.0.0.0/33", "10.0.0.0/-1", "::/0", "::/129", "2001:db8::/64",
             "10.1.2.3/255.255.0.0", "localhost", "0x0a000001"]


def number(rng):
    return rng.choice([
        "0", "1", "65535", "65536", "4294967295", "4294967296", "18446744073709551615",
        "18446744073709551616", "99999999999999999999999", "-1", "-4294967296",
        "0x10", "0xffffffff", "0x", "010", "08", "1e3", " 1", "1 ", "+5",
        str(rng.randrange(-10**6, 10**6)), "%d/%d" % (rng.randrange(2**32), rng.randrange(2**32)),
        "0x%x/0x%x" % (rng.randrange(2**33), rng.randrange(2**33))])


def junk(rng):
    choice = rng.randrange(5)
    if choice == 0:
        return ""
    if choice == 1:
        return "x" * rng.choice([1, 255, 4096, 100000])
    if choice == 2:
        alphabet = "abc019:/.,-_=%\\\"' \t*?[]{}<>()&|;$~"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 20))).lstrip("-") or "y"
    if choice == 3:
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 12))).decode("latin-1").lstrip("-") or "z"
    return "\u00e9\u2603\U0001F600"


def value(rng):
    kind = rng.randrange(7)
    return [lambda: rng.choice(ADDRESSES), lambda: number(rng), lambda: rng.choice(PROTOCOLS),
            lambda: rng.choice(STATES), lambda: rng.choice(WORDS), lambda: junk(rng),
            lambda: rng.choice(ADDRESSES + WORDS)][kind]()


ADDRESS_OPTIONS = {"-s", "--orig-src", "--src", "-d", "--orig-dst", "--dst", "-r", "--reply-src",
                   "-q", "--reply-dst", "--tuple-src", "--tuple-dst", "--mask-src", "--mask-dst",
                   "-[", "-]", "-{", "-}", "-a", "--nat-range"}
FITTING = [
    (ADDRESS_OPTIONS, lambda rng: rng.choice(ADDRESSES)),
    ({"--state"}, lambda rng: rng.choice(STATES)),
    ({"-u", "--status"}, lambda rng: rng.choice(WORDS[:6])),
    ({"-e", "--event-mask"}, lambda rng: rng.choice(WORDS[6:11])),
    ({"-o", "--output"}, lambda rng: ",".join(rng.sample(WORDS[11:20], rng.randrange(1, 4)))),
    ({"-f", "--family"}, lambda rng: rng.choice(WORDS[20:24])),
    ({"--role"}, lambda rng: rng.choice(WORDS[24:26])),
    ({"-l", "--label", "--label-add", "-<"}, lambda rng: rng.choice(WORDS[26:29])),
]


def fitting_value(rng, option):
    """Usually a value of the option's kind, so that commands get past the
    parser; otherwise any value."""
    if rng.random() < 0.85:
        for options, make in FITTING:
            if option in options:
                return make(rng)
        return str(rng.choice([0, 1, 80, 65535, 2**31 - 1, rng.randrange(2**32)]))
    return value(rng)


def command_line(rng, commands=COMMANDS):
    """Tokens of one random command line. Values never start with '--'."""
    words = []
    if rng.random() < 0.9:
        command = rng.choice(commands)
        words.append(command)
        if command in OPTIONAL_ARG and rng.random() < 0.2:
            words.append(rng.choice(["conntrack", "expect", "dying", "unconfirmed", "x", ""]))
    proto = None
    for _ in range(rng.randrange(0, 8)):
        r = rng.random()
        if r < 0.15:
            proto = rng.choice(PROTOCOLS if rng.random() < 0.3 else list(PROTO_OPTIONS))
            words += [rng.choice(["-p", "--protonum"]), proto]
        elif r < 0.45 and proto in PROTO_OPTIONS:
            option = rng.choice(PROTO_OPTIONS[proto])
            words += [option, fitting_value(rng, option)]
        elif r < 0.8:
            option = rng.choice(WITH_ARG)
            words += [option, fitting_value(rng, option)]
        elif r < 0.88:
            words.append(rng.choice(FLAGS))
        elif r < 0.93:
            words.append(rng.choice(commands))
        else:
            words.append(value(rng))
    return words


def maybe_event(words):
    """Whether getopt could read the words as an event command (-E...)."""
    return any(w == "--event" or (w.startswith("-") and not w.startswith("--") and "E" in w)
               for w in words)


def run_once(ns, args, deadline=10.0):
    """-> (returncode, stderr, interrupted)."""
    p = subprocess.Popen([IP, "netns", "exec", ns.name, CTL] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    interrupted = False
    try:
        _, err = p.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        interrupted = True
        p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
    return p.returncode, err.decode("utf-8", "replace"), interrupted


def check(ns, args, rng_seed, lines=None):
    rc, err, interrupted = run_once(ns, args)
    where = "seed %d argv %r%s" % (rng_seed, args, "\n-R file:\n" + "\n".join(lines) if lines else "")
    assert rc >= 0, "killed by signal %d: %s\nstderr: %s" % (-rc, where, err)
    assert not interrupted or maybe_event(args + (lines and " ".join(lines).split() or [])), \
        "hung (needed SIGINT): %s\nstderr: %s" % (where, err)
    assert rc in (0, 1, 2), "exit %d: %s\nstderr: %s" % (rc, where, err)
    if rc != 0 and not interrupted:
        assert err.strip(), "exit %d with nothing on stderr: %s" % (rc, where)


def test_random_command_lines_and_load_files():
    seed = int(os.environ.get("CTLTEST_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    print("CTLTEST_FUZZ_SEED=%d" % seed)
    rng = random.Random(seed)
    ns = Netns("fuzz-args")
    runs = 0
    try:
        end = time.monotonic() + SECONDS
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "load")
            while time.monotonic() < end:
                run_seed = rng.randrange(2**32)
                local = random.Random(run_seed)
                if local.random() < 0.2:
                    lines = [" ".join(command_line(local, ["-A", "-D", "-I", "-U", "-F", "-L", "-E"]))
                             for _ in range(local.randrange(1, 8))]
                    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                        f.write("\n".join(lines) + local.choice(["", "\n", "\n\n"]))
                    check(ns, [local.choice(["-R", "--load-file"]), path], run_seed, lines)
                else:
                    check(ns, command_line(local), run_seed)
                runs += 1
    finally:
        ns.destroy()
    print("%d runs (each reproducible from its printed seed)" % runs)
    assert runs > 10
