#!/usr/bin/env python3
"""ctl against conntrack on the same table, side by side, in one run.

Seeds a private network namespace with N entries (conntrack -R from a
generated file), then times each command for ctl and conntrack in
alternation (A B A B ...) and prints median wall times and their ratio,
plus ctl's peak RSS at 1,000 and at N entries.

Small tables (start-up and fixed set-up): -V, -C, -L and -D of a 500-entry
table, timed from inside the namespace (bench.py re-runs itself there with
--time-in-ns: no `ip netns exec` per run, whose own cost is several times
that of the command), the two tools in alternation, SMALL_ROUNDS runs each.

The dump floor (--floor, scripts/bench/dump-floor.c): one dump, every
datagram received and dropped, in a small C program; timed with -L in
both tables, its ratio to conntrack is the least any tool could reach.

--baseline OLD_CTL times an earlier build of ctl in the same rounds as
the current one (the -L table, the small table, -D, -U, -R): a change's
effect, measured free of the machine's mood between two runs.

Usage: bench.py CTL_BINARY [--entries N] [--rounds R] [--small-rounds R]
                [--only events|small|group] [--floor DUMP_FLOOR]
                [--baseline OLD_CTL]   (as root)

--group-by (ctl's own): `ctl -L --group-by src` against the pipeline people
use for the same answer, `conntrack -L | awk '{print $5}' | sort | uniq -c |
sort -rn` (every seed entry is tcp ESTABLISHED, so $5 is the source; the
issue's target is ctl at 0.3x of its wall time or less), and ctl's peak RSS
of --group-by at 1,000 and N entries: by src (as many groups as entries)
and by dport (two groups: memory should not grow with the entries).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, **kw)


def seed_tuple(i, count):
    """The i-th seed entry's tuple: source, destination, ports."""
    half = count // 2
    n = i if i < half else (128 << 16) + (i - half)
    src = f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
    return src, f"192.0.2.{i % 200 + 1}", 1024 + i % 60000, 80 if i % 10 == 0 else 443


def write_key_file(count):
    """The keys (SRC DST SPORT DPORT) of the seed entries in 10.0.0.0/9:
    the first half, which conntrack -D -s 10.0.0.0/9 selects."""
    with tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False) as f:
        for i in range(count // 2):
            f.write("%s %s %d %d\n" % seed_tuple(i, count))
        return f.name


def write_seed_file(count):
    """A -R file of `count` distinct tcp entries: the first half from
    10.0.0.0/9, the second from 10.128.0.0/9; mark i % 4 (so -m 1 is a
    quarter); dport 80 for every tenth entry, else 443."""
    with tempfile.NamedTemporaryFile("w", suffix=".ct", delete=False) as f:
        for i in range(count):
            src, dst, sport, dport = seed_tuple(i, count)
            f.write(f"-I -p tcp -s {src} -d {dst} "
                    f"--sport {sport} --dport {dport} --state ESTABLISHED "
                    f"-u SEEN_REPLY,ASSURED -m {i % 4} -t 3600\n")
        return f.name


def seed(ns, count):
    """Fills `ns` with the entries of write_seed_file, through conntrack -R."""
    path = write_seed_file(count)
    try:
        sh("ip", "netns", "exec", ns, "conntrack", "-R", path,
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.unlink(path)
    got = int(subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-C"],
                             capture_output=True, text=True).stdout.strip() or 0)
    return got


def wall(ns, argv, failures=None):
    """Wall time of one run. A failing run raises, unless `failures` (a
    list) is given: its stderr's last line is then appended there."""
    start = time.perf_counter()
    r = subprocess.run(["ip", "netns", "exec", ns] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        if failures is None:
            raise subprocess.CalledProcessError(r.returncode, argv, stderr=r.stderr)
        failures.append((r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1])
    return elapsed


def peak_rss_kib(ns, argv):
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "ip", "netns", "exec", ns] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(r.stderr.strip().splitlines()[-1])


def event_seed_file(count, proto):
    """A -R file of `count` distinct `proto` entries from 10.0.0.0/8."""
    state = " --state ESTABLISHED" if proto == "tcp" else ""
    with tempfile.NamedTemporaryFile("w", suffix=".ct", delete=False) as f:
        for i in range(count):
            f.write(f"-I -p {proto} -s 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255} "
                    f"-d 192.0.2.1 --sport 1 --dport 2 -t 600{state}\n")
        return f.name


def subscribed(ns):
    """Netfilter netlink sockets in `ns` bound to multicast groups."""
    lines = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/netlink"],
                           capture_output=True, text=True).stdout.splitlines()[1:]
    return sum(1 for l in lines if len(l.split()) >= 10 and l.split()[1] == "12"
               and int(l.split()[3], 16) != 0)


def watch_burst(tool, argv, path, env=None):
    """Runs `tool -E argv` (output to /dev/null) in a fresh namespace while
    conntrack -R creates the entries of `path`, stops it with SIGINT once the
    burst is over, and returns (events shown, CPU seconds, ENOBUFS warnings)."""
    ns = f"ctlbench-e-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.Popen(["ip", "netns", "exec", ns, tool, "-E"] + argv, env=full_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while subscribed(ns) < 1 and time.time() < deadline:
            time.sleep(0.01)
        sh("ip", "netns", "exec", ns, "conntrack", "-R", path, stderr=subprocess.DEVNULL)
        time.sleep(1.0)   # let the listener drain its queue
        p.send_signal(signal.SIGINT)
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0
        err = p.stderr.read().decode()
        last = err.strip().splitlines()[-1] if err.strip() else ""
        shown = int(last.split(": ")[-1].split()[0]) if "flow events" in last else -1
        return shown, usage.ru_utime + usage.ru_stime, err.count("ENOBUFS")
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def bench_events(args):
    """-E: events seen of a burst, and CPU time of a selective listener."""
    # Both listeners keep their default receive buffers (no -b).
    rounds = max(3, args.rounds // 3)
    print(f"\n{'-E':34} {'conntrack':>12} {'ctl':>10} {'ctl/conntrack':>14}")
    path = event_seed_file(args.entries, "udp")
    try:
        got = {"conntrack": [], args.ctl: []}
        for _ in range(rounds):
            for tool in got:
                got[tool].append(watch_burst(tool, [], path))
        a = statistics.median(r[0] for r in got["conntrack"])
        b = statistics.median(r[0] for r in got[args.ctl])
        print(f"{f'events seen of a {args.entries:,} burst':34} {a:12,.0f} {b:10,.0f} {b / max(a, 1):13.2f}x"
              f"   (conntrack warned of ENOBUFS {statistics.median(r[2] for r in got['conntrack']):.0f} times)")
    finally:
        os.unlink(path)
    path = event_seed_file(args.entries, "tcp")
    try:
        argv = ["-p", "udp", "--dport", "53"]
        cpu = {"conntrack": [], "ctl": [], "ctl-nofilter": []}
        for _ in range(rounds):
            cpu["conntrack"].append(watch_burst("conntrack", argv, path)[1])
            cpu["ctl"].append(watch_burst(args.ctl, argv, path)[1])
            cpu["ctl-nofilter"].append(watch_burst(args.ctl, argv, path, {"CTL_NO_KERNEL_FILTER": "1"})[1])
        a, b, c = (statistics.median(cpu[k]) for k in ("conntrack", "ctl", "ctl-nofilter"))
        print(f"{'CPU s of -E -p udp --dport 53':34} {a:12.4f} {b:10.4f} {b / a:13.3f}x"
              f"   (while {args.entries:,} tcp entries are created; ctl without its")
        print(f"{'':34} {'':12} {'':10} {'':14}    socket filter: {c:.4f} s, {c / a:.2f}x)")
    finally:
        os.unlink(path)


def bench_library(args, ns):
    """CTCore as a library (ctl-lib-bench, public API only): the async dump
    against the synchronous callback dump and conntrack -L, and a delete of
    a list of keys against conntrack -D selecting the same entries."""
    lib = os.path.join(os.path.dirname(args.ctl), "ctl-lib-bench")
    print(f"\nCTCore library ({args.entries:,} entries)")
    times = {"conntrack -L": [], "callback": [], "async": []}
    argvs = {"conntrack -L": ["conntrack", "-L"], "callback": [lib, "dump-callback"], "async": [lib, "dump-async"]}
    for argv in argvs.values():
        wall(ns, argv)
    for _ in range(args.rounds):
        for name, argv in argvs.items():
            times[name].append(wall(ns, argv))
    m = {name: statistics.median(t) for name, t in times.items()}
    print(f"{'flows() async vs forEachFlow':34} {m['callback']:12.4f} {m['async']:10.4f} "
          f"{m['async'] / m['callback']:13.2f}x")
    print(f"{'flows() async vs conntrack -L':34} {m['conntrack -L']:12.4f} {m['async']:10.4f} "
          f"{m['async'] / m['conntrack -L']:13.2f}x")
    keys = write_key_file(args.entries)
    try:
        a_times, b_times = [], []
        for _ in range(max(3, args.rounds // 3)):
            for argv, t in ((["conntrack", "-D", "-s", "10.0.0.0/9"], a_times), ([lib, "delete-keys", keys], b_times)):
                dns = f"ctlbench-k-{uuid.uuid4().hex[:6]}"
                sh("ip", "netns", "add", dns)
                try:
                    seed(dns, args.entries)
                    t.append(wall(dns, argv))
                    left = int(subprocess.run(["ip", "netns", "exec", dns, "conntrack", "-C"],
                                              capture_output=True, text=True).stdout.strip() or 0)
                    if left != args.entries - args.entries // 2:
                        sys.exit(f"bench: {argv[0]} left {left} entries, not {args.entries - args.entries // 2}")
                finally:
                    subprocess.run(["ip", "netns", "del", dns], stderr=subprocess.DEVNULL)
        a, b = statistics.median(a_times), statistics.median(b_times)
        print(f"{f'delete({args.entries // 2:,} keys) vs -D -s':34} {a:12.4f} {b:10.4f} {b / a:13.2f}x")
    finally:
        os.unlink(keys)


def bench_group(args, small_ns, big_ns, big):
    """-L --group-by src against conntrack -L | awk | sort | uniq -c | sort -rn,
    and the peak RSS of --group-by."""
    pipeline = "conntrack -L 2>/dev/null | awk '{print $5}' | sort | uniq -c | sort -rn"
    print(f"\n{'--group-by':34} {'pipeline s':>12} {'ctl s':>10} {'ctl/pipeline':>14}")
    src_pipeline = None
    for label, column, key in ((f"-L --group-by src ({big:,})", 5, "src"),
                               (f"-L --group-by dport ({big:,})", 8, "dport")):
        argv_a = ["sh", "-c", pipeline.replace("$5", f"${column}")]
        argv_b = [args.ctl, "-L", "--group-by", key]
        wall(big_ns, argv_a)
        wall(big_ns, argv_b)
        a_times, b_times = [], []
        for _ in range(args.rounds):
            a_times.append(wall(big_ns, argv_a))
            b_times.append(wall(big_ns, argv_b))
        a, b = statistics.median(a_times), statistics.median(b_times)
        src_pipeline = src_pipeline or a
        print(f"{label:34} {a:12.4f} {b:10.4f} {b / a:13.2f}x")
    # The floor: the kernel's dump of the whole table, decoded and counted
    # without any formatting or grouping (ctl -C with a selector that
    # matches every entry).
    floor = statistics.median(wall(big_ns, [args.ctl, "-C", "-p", "tcp"]) for _ in range(args.rounds))
    print(f"{'floor: the dump alone (-C -p tcp)':34} {'':12} {floor:10.4f} {floor / src_pipeline:13.2f}x"
          "   (of the src pipeline)")
    if args.floor:
        floor = statistics.median(wall(big_ns, [args.floor]) for _ in range(args.rounds))
        print(f"{'  dump floor (no decoding, C)':34} {'':12} {floor:10.4f} {floor / src_pipeline:13.2f}x"
              "   (of the src pipeline)")
    print(f"\npeak RSS of --group-by {'1,000 entries':>11} {f'{big:,} entries':>16} {'ratio':>7}")
    for key in ("src", "dport"):
        small_rss = peak_rss_kib(small_ns, [args.ctl, "-L", "--group-by", key])
        big_rss = peak_rss_kib(big_ns, [args.ctl, "-L", "--group-by", key])
        print(f"{'ctl --group-by ' + key:22} {small_rss:8} KiB {big_rss:12} KiB {big_rss / small_rss:6.2f}x")


def time_in_ns(spec):
    """Runs in the namespace (bench.py --time-in-ns SPEC): each of
    spec["pairs"] ([argv_a, argv_b, ...]) spec["rounds"] times, its commands
    in alternation after spec["warmup"] untimed rounds, stdout and stderr to
    /dev/null, each timed from spawn to exit. With spec["reseed"] (a -R
    file), conntrack -R loads it before each timed run (not timed): for
    commands that empty the table. Prints [[times_a, times_b, ...], ...] as
    JSON."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    env = dict(os.environ)

    def once(argv):
        if spec.get("reseed"):
            subprocess.run(["conntrack", "-R", spec["reseed"]], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"bench: {argv} failed ({os.waitstatus_to_exitcode(status)})")
        return elapsed

    results = []
    for argvs in spec["pairs"]:
        times = [[] for _ in argvs]
        for i in range(spec["warmup"] + spec["rounds"]):
            taken = [once(argv) for argv in argvs]
            if i >= spec["warmup"]:
                for t, elapsed in zip(times, taken):
                    t.append(elapsed)
        results.append(times)
    print(json.dumps(results))


def timed_in_ns(ns, pairs, rounds, warmup=10, reseed=None):
    """time_in_ns run inside `ns`: [(times_a, times_b), ...]."""
    spec = json.dumps({"pairs": pairs, "rounds": rounds, "warmup": warmup, "reseed": reseed})
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                        "--time-in-ns", spec], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


SMALL = 500


def bench_small(args, print_header=True):
    """-V, -C, -L and -D of a SMALL-entry table: what short runs cost."""
    ns = f"ctlbench-m-{uuid.uuid4().hex[:6]}"
    path = write_seed_file(SMALL)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        got = seed(ns, SMALL)
        if got != SMALL:
            sys.exit(f"bench: only {got} of {SMALL} entries were created")
        if print_header:
            print(f"\n{'command':34} {'conntrack s':>12} {'ctl s':>10} {'ctl/conntrack':>14}")
        cases = [("-V", ["-V"]), (f"-C ({SMALL})", ["-C"]), (f"-L ({SMALL} entries)", ["-L"])]
        pairs = [[["conntrack"] + argv, [args.ctl] + argv] + ([[args.baseline] + argv] if args.baseline else [])
                 for _, argv in cases]
        # The dump floor with -L: the least a listing can take.
        if args.floor:
            pairs[-1].append([args.floor])
        results = timed_in_ns(ns, pairs, args.small_rounds)
        # -D of the whole table: the table is loaded again before each run.
        sh("ip", "netns", "exec", ns, "conntrack", "-F", stderr=subprocess.DEVNULL)
        results += timed_in_ns(ns, [[["conntrack", "-D"], [args.ctl, "-D"]]
                                    + ([[args.baseline, "-D"]] if args.baseline else [])],
                               max(20, args.small_rounds // 5), warmup=3, reseed=path)
        cases.append((f"-D ({SMALL} entries)", ["-D"]))
        for (label, _), times in zip(cases, results):
            a, b = statistics.median(times[0]), statistics.median(times[1])
            print(f"{label:34} {a:12.5f} {b:10.5f} {b / a:13.2f}x")
            rest = times[2:]
            if args.baseline:
                o = statistics.median(rest.pop(0))
                print(f"{'  baseline ctl':34} {a:12.5f} {o:10.5f} {o / a:13.2f}x")
            if rest:
                f = statistics.median(rest[0])
                print(f"{'  dump floor (no decoding, C)':34} {a:12.5f} {f:10.5f} {f / a:13.2f}x")
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        os.unlink(path)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--time-in-ns":
        time_in_ns(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("ctl")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--small-rounds", type=int, default=200)
    ap.add_argument("--only", choices=["events", "small", "group"], help="run one section only")
    ap.add_argument("--floor", help="scripts/bench/dump-floor.c built: timed with -L as the dump floor")
    ap.add_argument("--baseline", help="another ctl binary (an earlier build) timed in the same rounds: "
                                       "its ratios print below ctl's (make bench BASELINE=PATH)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it creates network namespaces)")
    if args.only == "events":
        bench_events(args)
        return
    if args.only == "small":
        bench_small(args)
        return

    small_ns = f"ctlbench-s-{uuid.uuid4().hex[:6]}"
    big_ns = f"ctlbench-b-{uuid.uuid4().hex[:6]}"
    try:
        for ns in (small_ns, big_ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        small = seed(small_ns, 1_000)
        t0 = time.perf_counter()
        big = seed(big_ns, args.entries)
        print(f"seeded {big} entries in {time.perf_counter() - t0:.1f} s (and {small} for the small table)")
        if big < args.entries * 0.99:
            sys.exit(f"bench: only {big} of {args.entries} entries were created "
                     "(net.netfilter.nf_conntrack_max too low?)")
        if args.only == "group":
            bench_group(args, small_ns, big_ns, big)
            return

        cases = [
            ("-L > /dev/null", ["-L"]),
            ("-L -o extended", ["-L", "-o", "extended"]),
            ("-L -o extended,id,ktimestamp", ["-L", "-o", "extended,id,ktimestamp"]),
            ("-L -f ipv6 (no match)", ["-L", "-f", "ipv6"]),
            ("-L -s 10.0.0.0/9 (half)", ["-L", "-s", "10.0.0.0/9"]),
            ("-L -p tcp --dport 80 (a tenth)", ["-L", "-p", "tcp", "--dport", "80"]),
            ("-L -m 1 (a quarter)", ["-L", "-m", "1"]),
            ("-C", ["-C"]),
        ]
        print(f"\n{'command':34} {'conntrack s':>12} {'ctl s':>10} {'ctl/conntrack':>14}")
        for label, argv in cases:
            a_times, b_times, f_times, o_times = [], [], [], []
            floor = args.floor and argv == ["-L"]
            wall(big_ns, ["conntrack"] + argv)  # warm caches
            wall(big_ns, [args.ctl] + argv)
            for _ in range(args.rounds):
                a_times.append(wall(big_ns, ["conntrack"] + argv))
                b_times.append(wall(big_ns, [args.ctl] + argv))
                if args.baseline:
                    o_times.append(wall(big_ns, [args.baseline] + argv))
                if floor:
                    f_times.append(wall(big_ns, [args.floor]))
            a, b = statistics.median(a_times), statistics.median(b_times)
            print(f"{label:34} {a:12.4f} {b:10.4f} {b / a:13.2f}x")
            if args.baseline:
                o = statistics.median(o_times)
                print(f"{'  baseline ctl':34} {a:12.4f} {o:10.4f} {o / a:13.2f}x")
            if floor:
                f = statistics.median(f_times)
                print(f"{'  dump floor (no decoding, C)':34} {a:12.4f} {f:10.4f} {f / a:13.2f}x")
        bench_small(args, print_header=False)

        # ctl's own -o json (no conntrack counterpart) against ctl's text.
        text_times, json_times = [], []
        wall(big_ns, [args.ctl, "-L", "-o", "json"])
        for _ in range(args.rounds):
            text_times.append(wall(big_ns, [args.ctl, "-L"]))
            json_times.append(wall(big_ns, [args.ctl, "-L", "-o", "json"]))
        t, j = statistics.median(text_times), statistics.median(json_times)
        print(f"{'-L -o json (ctl -L, ctl json)':34} {t:12.4f} {j:10.4f} {j / t:13.2f}x")

        # Deletes change the table: every run gets a freshly seeded pair of
        # namespaces, one for each tool, and only the delete is timed.
        delete_cases = [
            ("-D -s 10.0.0.0/9 (half)", ["-D", "-s", "10.0.0.0/9"]),
            ("-D -m 1 (a quarter)", ["-D", "-m", "1"]),
            # conntrack -U needs an address or -f to update anything, and
            # fails with ENOBUFS after a few hundred updated entries (its
            # replies fall out of step and fill its socket), so the half-table
            # case shows that failure; the small case gives a ratio.
            ("-U -s 10.0.0.0/9 -m 7 (half)", ["-U", "-s", "10.0.0.0/9", "-m", "7"]),
            ("-U -s 10.0.0.0/25 -m 7 (128)", ["-U", "-s", "10.0.0.0/25", "-m", "7"]),
        ]
        for label, argv in delete_cases:
            a_times, b_times, o_times = [], [], []
            a_failures = []
            tools = [("conntrack", a_times), (args.ctl, b_times)] + ([(args.baseline, o_times)] if args.baseline else [])
            for _ in range(max(3, args.rounds // 3)):
                for tool, times in tools:
                    ns = f"ctlbench-d-{uuid.uuid4().hex[:6]}"
                    sh("ip", "netns", "add", ns)
                    try:
                        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
                        seed(ns, args.entries)
                        times.append(wall(ns, [tool] + argv, a_failures if tool == "conntrack" else None))
                    finally:
                        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
            a, b = statistics.median(a_times), statistics.median(b_times)
            if a_failures:
                print(f"{label:34} {'fails':>12} {b:10.4f}   conntrack: {a_failures[0]}")
            else:
                print(f"{label:34} {a:12.4f} {b:10.4f} {b / a:13.2f}x")
            if o_times:
                o = statistics.median(o_times)
                print(f"{'  baseline ctl':34} {'':12} {o:10.4f} " + (f"{o / a:13.2f}x" if not a_failures else ""))

        # -R of the seed file into an empty namespace: kernel work per
        # created entry is the floor.
        path = write_seed_file(args.entries)
        try:
            a_times, b_times, o_times = [], [], []
            tools = [("conntrack", a_times), (args.ctl, b_times)] + ([(args.baseline, o_times)] if args.baseline else [])
            for _ in range(max(3, args.rounds // 3)):
                for tool, times in tools:
                    ns = f"ctlbench-r-{uuid.uuid4().hex[:6]}"
                    sh("ip", "netns", "add", ns)
                    try:
                        times.append(wall(ns, [tool, "-R", path]))
                    finally:
                        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
            a, b = statistics.median(a_times), statistics.median(b_times)
            print(f"{f'-R ({args.entries:,} lines)':34} {a:12.4f} {b:10.4f} {b / a:13.2f}x")
            if o_times:
                o = statistics.median(o_times)
                print(f"{'  baseline ctl':34} {a:12.4f} {o:10.4f} {o / a:13.2f}x")
        finally:
            os.unlink(path)

        bench_library(args, big_ns)
        bench_group(args, small_ns, big_ns, big)

        rss_small = peak_rss_kib(small_ns, [args.ctl, "-L"])
        rss_big = peak_rss_kib(big_ns, [args.ctl, "-L"])
        ct_small = peak_rss_kib(small_ns, ["conntrack", "-L"])
        ct_big = peak_rss_kib(big_ns, ["conntrack", "-L"])
        print(f"\npeak RSS of -L      {'1,000 entries':>14} {f'{big:,} entries':>16} {'ratio':>7}")
        print(f"ctl                 {rss_small:11} KiB {rss_big:12} KiB {rss_big / rss_small:6.2f}x")
        print(f"conntrack           {ct_small:11} KiB {ct_big:12} KiB {ct_big / ct_small:6.2f}x")
        bench_events(args)
    finally:
        for ns in (small_ns, big_ns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
