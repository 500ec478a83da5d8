#!/usr/bin/env python3
"""Reliability figures for ctl (`make stress`), as root.

1. The largest table: raises net.netfilter.nf_conntrack_max in the initial
   namespace for the run (restored afterwards, also on failure or Ctrl-C),
   fills a private namespace with N entries (default 1,000,000) and lists
   them with ctl and conntrack: time, peak RSS, lines; then ctl -D of a
   quarter, checked by count.
2. Churn: while a process creates entries in 10.3.0.0/16 that expire a
   second later (thousands a second, so as many go), ctl -L runs again and again (every line must be
   well-formed, the summary must count the lines) and ctl -D deletes
   10.2.0.0/16; entries in 10.1.0.0/16 are never touched by anyone, so any
   that is missing afterwards is a wrong deletion.
3. With `--fuzz-seconds S --fuzzer PATH --corpus DIR...` (make stress
   passes them), runs the decoder fuzzer for S seconds and reports
   executions and crashes; with `--args-fuzzer PATH --args-corpus DIR...
   --args-dict FILE` too, the argument and -R parser fuzzer as long.

Usage: stress.py CTL_BINARY [--entries N] [--churn-seconds S]
                 [--fuzz-seconds S --fuzzer PATH --corpus DIR...]
                 [--args-fuzzer PATH --args-corpus DIR... --args-dict FILE]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

MAX_PATH = "/proc/sys/net/netfilter/nf_conntrack_max"
LINE_RE = re.compile(r"^tcp      6 \d+ ESTABLISHED src=10\.\d+\.\d+\.\d+ dst=192\.0\.2\.\d+ sport=\d+ dport=\d+ "
                     r"src=192\.0\.2\.\d+ dst=10\.\d+\.\d+\.\d+ sport=\d+ dport=\d+ \[ASSURED\] mark=\d+ use=1$")


def netns_run(ns, argv, stdout=subprocess.DEVNULL, input=None):
    """Runs argv in ns; returns (exit code, stdout, stderr, seconds)."""
    start = time.perf_counter()
    p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=stdout, stderr=subprocess.PIPE,
                         stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
    out, err = p.communicate(input)
    return p.returncode, out, err.decode(errors="replace"), time.perf_counter() - start


def measured(ns, argv):
    """(exit code, seconds, peak RSS in KiB) of argv in ns, output discarded.
    GNU time runs `ip netns exec`, which execs argv: the peak is argv's (or
    ip's own, a few hundred KiB, if that were higher)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%x %e %M", "ip", "netns", "exec", ns] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rc, seconds, rss = r.stderr.strip().splitlines()[-1].split()
    return int(rc), float(seconds), int(rss)


def lines(kind, first, count, mark=None):
    """-R lines for `count` distinct tcp entries of 10.<kind>.x.y."""
    out = []
    for i in range(first, first + count):
        src = "10.%d.%d.%d" % (kind, (i >> 8) & 255, i & 255) if kind else \
            "10.%d.%d.%d" % (128 + (i >> 16), (i >> 8) & 255, i & 255)
        out.append("%s -p tcp -s %s -d 192.0.2.%d --sport %d --dport 443 --state ESTABLISHED "
                   "-u SEEN_REPLY,ASSURED -m %d -t 3600" % ("%s", src, i % 200 + 1, 1024 + i % 60000,
                                                            (i % 4) if mark is None else mark))
    return out


def load(ctl, ns, templates, command="-I"):
    with tempfile.NamedTemporaryFile("w", suffix=".ct", delete=False) as f:
        for t in templates:
            f.write(t % command + "\n")
        path = f.name
    try:
        rc, _, err, _ = netns_run(ns, [ctl, "-R", path])
        if rc != 0:
            raise RuntimeError("ctl -R %s failed: %s" % (command, err.strip()[-300:]))
    finally:
        os.unlink(path)


def count(ctl, ns):
    return int(subprocess.run(["ip", "netns", "exec", ns, ctl, "-C"], capture_output=True,
                              text=True).stdout.strip() or 0)


def new_ns():
    name = "ctlstress-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    return name


def largest_table(ctl, entries):
    ns = new_ns()
    try:
        start = time.perf_counter()
        load(ctl, ns, lines(0, 0, entries))
        seeded = count(ctl, ns)
        print("largest table: %s entries created with ctl -R in %.1f s" % (format(seeded, ","), time.perf_counter() - start))
        print("  %-28s %10s %12s" % ("command", "seconds", "peak RSS"))
        for name, argv in [("ctl -L", [ctl, "-L"]), ("conntrack -L", ["conntrack", "-L"]),
                           ("ctl -L -o json", [ctl, "-L", "-o", "json"])]:
            rc, seconds, rss = measured(ns, argv)
            print("  %-28s %10.2f %9s KiB%s" % (name, seconds, format(rss, ","), "" if rc == 0 else "  (exit %d)" % rc))
        rc, out, err, seconds = netns_run(ns, [ctl, "-L"], stdout=subprocess.PIPE)
        listed = out.count(b"\n")
        summary = re.search(r"(\d+) flow entries have been shown", err)
        print("  ctl -L printed %s lines; summary says %s; exit %d" % (format(listed, ","), summary and summary.group(1), rc))
        before = count(ctl, ns)
        rc, seconds, rss = measured(ns, [ctl, "-D", "-m", "1"])
        after = count(ctl, ns)
        print("  ctl -D -m 1: %.2f s, peak RSS %s KiB, %s deleted (a quarter is %s), exit %d"
              % (seconds, format(rss, ","), format(before - after, ","), format(seeded // 4, ","), rc))
        ok = listed == seeded and summary and int(summary.group(1)) == seeded and before - after == seeded // 4
        return bool(ok)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


CHURN = r"""
import subprocess, sys, tempfile, time
ctl, seconds = sys.argv[1], float(sys.argv[2])
# udp entries of 10.3.0.0/16 with a one-second timeout: created here in
# batches, deleted by the kernel as they expire.
batch = 2000
made = 0
first = 0
deadline = time.time() + seconds
with tempfile.NamedTemporaryFile("w", suffix=".ct") as f:
    while time.time() < deadline:
        f.seek(0)
        f.truncate()
        for i in range(first, first + batch):
            f.write("-I -p udp -s 10.3.%d.%d -d 192.0.2.1 --sport %d --dport 53 -t 1\n"
                    % ((i >> 8) & 255, i & 255, 1024 + i % 60000))
        f.flush()
        if subprocess.run([ctl, "-R", f.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            made += batch
        first = (first + batch) % 60000
        time.sleep(0.05)
print(made)
"""


def churn(ctl, seconds):
    ns = new_ns()
    try:
        load(ctl, ns, lines(1, 0, 20000, mark=0))
        load(ctl, ns, lines(2, 0, 20000, mark=0))
        keep = {l for l in subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-s", "10.1.0.0/16"],
                                          capture_output=True, text=True).stdout.splitlines()}
        keep = {re.sub(r" \d+ ESTABLISHED", " T ESTABLISHED", l) for l in keep}
        churner = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", CHURN, ctl, str(seconds)],
                                   stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        listings = bad_lines = listed = 0
        deleted_ok = None
        deadline = time.time() + seconds - 1
        while time.time() < deadline:
            if deleted_ok is None and time.time() > deadline - seconds / 2:
                rc, out, err, _ = netns_run(ns, [ctl, "-D", "-s", "10.2.0.0/16"], stdout=subprocess.PIPE)
                deleted = out.decode().splitlines()
                deleted_ok = rc == 0 and len(deleted) == 20000 and all(" src=10.2." in l for l in deleted)
                continue
            rc, out, err, _ = netns_run(ns, [ctl, "-L"], stdout=subprocess.PIPE)
            text = out.decode()
            got = text.splitlines()
            summary = re.search(r"(\d+) flow entries have been shown", err)
            listings += 1
            listed += len(got)
            bad_lines += sum(1 for l in got if not (LINE_RE.match(l) or l.startswith("udp      17 ")))
            if rc != 0 or not summary or int(summary.group(1)) != len(got):
                bad_lines += 1
        made = int(churner.communicate()[0].strip() or 0)
        after = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-s", "10.1.0.0/16"],
                               capture_output=True, text=True).stdout.splitlines()
        after = {re.sub(r" \d+ ESTABLISHED", " T ESTABLISHED", l) for l in after}
        wrong = len(keep - after)
        left = int(subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-C"], capture_output=True,
                                  text=True).stdout.strip() or 0) - 20000
        print("churn: %s udp entries created (1 s timeout) in %d s, %s a second, %s of them gone again while ctl ran"
              % (format(made, ","), seconds, format(int(made / seconds), ","), format(max(made - left, 0), ",")))
        print("  ctl -L: %d listings, %s lines, %d malformed lines or wrong summaries"
              % (listings, format(listed, ","), bad_lines))
        print("  ctl -D -s 10.2.0.0/16 under churn: %s; wrong deletions (10.1.0.0/16 entries gone): %d"
              % ("deleted exactly its 20,000" if deleted_ok else "FAILED", wrong))
        return bad_lines == 0 and deleted_ok and wrong == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def fuzz(fuzzer, corpora, seconds, what="decoder", options=()):
    """Runs a fuzzer for `seconds` on a fresh corpus seeded from `corpora`;
    reports executions and whether anything crashed."""
    if not fuzzer or not os.path.exists(fuzzer):
        print("fuzz: no fuzzer built (make fuzz-build builds it); skipped")
        return True
    corpus = tempfile.mkdtemp(prefix="ctl-fuzz-")
    r = subprocess.run([fuzzer, "-max_total_time=%d" % seconds, "-timeout=10", "-print_final_stats=1",
                        "-artifact_prefix=%s/" % corpus] + list(options) + [corpus] + corpora,
                       capture_output=True, text=True)
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
    print("fuzz: %s %s executions in %d s, %s" % (format(int(execs.group(1)), ",") if execs else "?", what, seconds,
                                                 "0 crashes" if r.returncode == 0 else "CRASH (exit %d)" % r.returncode))
    if r.returncode != 0:
        print(r.stderr[-3000:])
        print("  (inputs and the crashing one kept in %s)" % corpus)
    else:
        shutil.rmtree(corpus, ignore_errors=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ctl")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--churn-seconds", type=int, default=10)
    ap.add_argument("--fuzz-seconds", type=int, default=0)
    ap.add_argument("--fuzzer")
    ap.add_argument("--corpus", nargs="*", default=[])
    ap.add_argument("--args-fuzzer")
    ap.add_argument("--args-corpus", nargs="*", default=[])
    ap.add_argument("--args-dict")
    args = ap.parse_args()
    ctl = os.path.abspath(args.ctl)
    old = open(MAX_PATH).read().strip()
    ok = True
    try:
        if int(old) < args.entries * 11 // 10:
            with open(MAX_PATH, "w") as f:
                f.write(str(args.entries * 11 // 10))
        ok &= largest_table(ctl, args.entries)
    finally:
        with open(MAX_PATH, "w") as f:
            f.write(old)
        print("  (nf_conntrack_max restored to %s)" % open(MAX_PATH).read().strip())
    ok &= churn(ctl, args.churn_seconds)
    if args.fuzz_seconds:
        ok &= fuzz(args.fuzzer, args.corpus, args.fuzz_seconds)
        if args.args_fuzzer:
            ok &= fuzz(args.args_fuzzer, args.args_corpus, args.fuzz_seconds, "argument and -R parser",
                       ["-max_len=4096"] + (["-dict=%s" % args.args_dict] if args.args_dict else []))
    print("stress: %s" % ("all checks passed" if ok else "SOME CHECKS FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
