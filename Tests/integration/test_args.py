"""Argument handling: errors, help/version, not-implemented answers and
behaviour without CAP_NET_ADMIN."""

import difflib
import os
import re

import pytest

from conftest import (CONNTRACK, CTL, SETPRIV, compare, run)


def _id(args):
    return " ".join(args) if args else "<no args>"


# Cases that conntrack 1.4.7 rejects while parsing/validating the command
# line (exit 2, nothing done) for generic reasons that do not depend on any
# later-milestone feature: unknown options, command combinations, tables,
# -o / -f values, missing arguments, options illegal with a command.
BAD_ARGS = [
    ["-X"],                               # unknown option `-X'
    ["--foo"],                            # unknown option `--foo'
    ["-L", "--foo"],
    ["-V", "--foo"],
    ["--li"],                             # there is no --list (it is --dump)
    ["--list"],
    ["-L", "--o", "id"],                  # ambiguous abbreviation -> unknown
    ["-L", "--f", "ipv6"],
    ["-L", "--zero=1"],                   # argument to a no-arg long option
    ["-L", "-C"],                         # Invalid commands combination
    ["-L", "-L"],
    ["-C", "-S"],
    ["-F", "-L"],
    ["--dump", "--count"],
    ["-L", "-h"],
    ["-h", "-V"],
    ["-V", "-L"],
    ["-L", "-o", "id", "-C"],
    ["-L", "-C", "-o", "foo"],            # first error wins: the combination
    ["-L", "-o", "foo", "-C"],            # ... or the bad -o value
    ["--foo", "-L", "-C"],
    ["--dump", "--dump"],
    ["-C", "-C"],
    ["-F", "-F"],
    ["-S", "-S"],
    ["--foo=bar"],                        # unknown option `--foo=bar'
    ["-L", "-o", "-f"],                   # Bad parameter `-f' (value taken as is)
    ["-f", "-L"],                         # `-L' unsupported protocol
    ["-L", "-f", "-L"],
    ["-L", "--output=id", "--output=foo"],
    ["-L", "foo"],                        # unknown type `foo'
    ["-L", "foo", "-o", "extended"],
    ["-L", "extra", "conntrack"],
    ["-L", "CONNTRACK"],
    ["-L", "conntrackx"],
    ["-C", "foo"],
    ["-S", "foo"],
    ["-F", "foo"],
    ["-L", "-o", "foo"],                  # Bad parameter `foo'
    ["-L", "-o", "extended,foo"],
    ["-L", "-o", "foo,id"],               # Bad parameter `foo,id' (rest of string)
    ["-L", "-o", ""],
    ["-L", "-o", "extended,"],
    ["-L", "-o", ",extended"],
    ["-L", "-o", "extended,,id"],
    ["-L", "--output="],
    ["-L", "-o", "idx"],
    ["-L", "-o"],                         # option `-o' requires an argument
    ["-L", "--output"],
    ["-L", "--ou"],
    ["-L", "-o", "id", "-o"],
    ["-f"],                               # option `-f' requires an argument
    ["-L", "-f"],
    ["-L", "--family"],
    ["-L", "-f", "foo"],                  # `foo' unsupported protocol
    ["-L", "-f", "IPV6"],
    ["-L", "-f", "inet"],
    ["-L", "--family="],
    ["-L", "-f", "foo", "-o", "bar"],
    ["-L", "-f", "ipv4", "-f", "ipv6"],   # mismatched address family
    ["-L", "-f", "ipv6", "--family", "ipv4"],
    ["-S", "-o", "id"],                   # Illegal option `--output' ...
    ["-C", "-o", "id"],
    ["-F", "-o", "id"],
    ["-F", "-f", "ipv6", "-o", "id"],
    ["-C", "-z"],                         # Illegal option `--zero' ...
    ["-S", "-z"],
    ["-F", "--zero"],
    ["-S", "-f", "ipv4"],                 # Illegal option `--family' ...
    # (-C -f ipv4 is ctl's filtered count: test_answers.py pins it)
    ["-S", "-o", "id", "-f", "ipv4"],
    ["-o", "id"],                         # no command: options are illegal
    ["-f", "ipv4"],
    ["-z"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=_id)
def test_bad_args(scratch_ns, args):
    o, _ = compare(scratch_ns, args, stdout_mode="exact")
    assert o.rc == 2, "oracle accepted %r -- table entry is wrong" % (args,)
    assert o.stdout == ""
    assert o.stderr.splitlines()[-1] == \
        "Try `conntrack -h' or 'conntrack --help' for more information."


# Rejected by conntrack at parse/validation time too; ctl must match it
# exactly.
LATER_BAD_ARGS = [
    # (-C -m 1 is ctl's filtered count: test_answers.py pins it)
    ["-S", "-m", "1"],                    # Illegal option `--mark' ...
    ["-F", "-s", "1.2.3.4"],              # Illegal option `--src' ...
    ["-L", "-t", "5"],                    # Illegal option `--timeout' ...
    ["-L", "-o", "id", "-t", "5"],
    ["-S", "-p", "tcp"],                  # Illegal option `--protonum' ...
    ["-m", "1"],
    ["-L", "-b", "100000"],               # Illegal option `--buffer-size' ...
    ["-L", "-e", "NEW"],                  # Illegal option `--event-mask' ...
    ["-L", "-i", "5"],                    # Illegal option `--id' ...
    ["-L", "--tuple-src", "1.1.1.1"],     # Illegal option `--tuple-src' ...
    ["-L", "-z", "-s", "1.1.1.1"],        # Can't use -z with filtering parameters
    ["-L", "-w", "0", "-z"],
    ["-L", "--mask-src", "255.0.0.0"],    # Can't use --mask-src without --src
    ["-L", "--mask-dst", "255.0.0.0"],
    ["-L", "-p", "foo"],                  # `foo' unsupported protocol
    ["-L", "-p", "256"],
    ["-L", "-s", "foo"],                  # Invalid IP address `foo'
    ["-L", "-s", "1.1.1.1", "-f", "ipv6"],  # mismatched address family
    ["-L", "-s", "1.1.1.1", "-d", "::1"],
    ["-L", "-u", "foo"],                  # Bad parameter `foo'
    ["-L", "-u", "ASSURED,foo"],
    ["-L", "-p", "tcp", "--state", "FOO"],  # unknown TCP state `FOO'
    ["-L", "--sport", "1"],               # unknown option (needs -p first)
    ["-L", "--state", "ESTABLISHED"],
    ["-L", "-m"],                         # option `-m' requires an argument
    ["-L", "-u"],
    ["-L", "-w"],
    ["-L", "-p"],
    ["-L", "-a"],
    ["-L", "--orig-zone"],
    ["-L", "-p", "tcp", "--sport", "1", "--dport"],
    ["-L", "-R"],                         # unknown option `-R' in 1.4.7
    ["-F", "--label-del"],                # Illegal option `--label-del' (after the label file is read)
    ["-C", "--label-del"],
    ["-S", "--label-del"],
    ["-F", "-l", "nosuch-label"],         # unknown label 'nosuch-label'
    ["-C", "dying"],                      # Can't do that command with tables ...
    ["-C", "unconfirmed"],
    ["-C", "d"],
    ["-I"],                               # You need to supply the `--protonum' ...
    ["-G"],
    ["-I", "-p", "tcp"],                  # You need to supply the `--timeout' ...
    ["-G", "-p", "tcp"],                  # you have to specify `--src' and `--dst'
]


@pytest.mark.parametrize("args", LATER_BAD_ARGS, ids=_id)
def test_bad_args_later(scratch_ns, args):
    o = run(scratch_ns, CONNTRACK, args)
    assert o.rc == 2, "oracle accepted %r -- table entry is wrong" % (args,)
    compare(scratch_ns, args, stdout_mode="exact")


def test_save_combination_error(scratch_ns):
    """`-o save` combined with anything: exit 1 (not 2) and no Try line."""
    o, _ = compare(scratch_ns, ["-L", "-o", "xml,save"],
                                      stdout_mode="exact")
    assert o.rc == 1


# ------------------------------------------------------------ help / version

def _norm_help(text):
    out = []
    for line in text.splitlines():
        line = re.sub(r"^(Command line interface for the connection tracking "
                      r"system\. Version) \S+$", r"\1 V", line)
        line = re.sub(r"^Usage: \S+ ", "Usage: PROG ", line)
        out.append(line)
    return out


@pytest.mark.parametrize("args", [["-h"], ["--help"], [], ["foo"], ["-"],
                                  ["--", "-L"]],
                         ids=_id)
def test_help(scratch_ns, args):
    """Help goes to stdout with exit 0 and an empty stderr (also for no
    arguments and for a lone non-option word).  ctl has its own help text, so
    the text itself is only compared with CTLTEST_STRICT_HELP=1 (normalising
    the version in line 1 and argv[0] in the Usage line)."""
    o = run(scratch_ns, CONNTRACK, args)
    c = run(scratch_ns, CTL, args)
    assert o.rc == 0 and o.stderr == "" and "Usage: " in o.stdout
    assert (c.rc, c.stderr) == (o.rc, o.stderr), c.show("ctl")
    assert "-L" in c.stdout and c.stdout.endswith("\n"), c.show("ctl")
    if os.environ.get("CTLTEST_STRICT_HELP"):
        assert _norm_help(c.stdout) == _norm_help(o.stdout), "\n".join(
            difflib.unified_diff(_norm_help(o.stdout), _norm_help(c.stdout),
                                 "conntrack", "ctl", lineterm=""))


@pytest.mark.parametrize("args", [["-V"], ["--version"]], ids=_id)
def test_version(scratch_ns, args):
    o = run(scratch_ns, CONNTRACK, args)
    c = run(scratch_ns, CTL, args)
    assert (o.rc, o.stdout, o.stderr) == (0, "conntrack v1.4.7 (conntrack-tools)\n", "")
    assert (c.rc, c.stderr) == (0, ""), c.show("ctl")
    assert re.fullmatch(r"(conntrack v1\.4\.7 \(conntrack-tools\)|ctl v\S+.*)\n",
                        c.stdout), c.show("ctl")


# ------------------------------------------------------------ no CAP_NET_ADMIN

UNPRIV = [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
          "--inh-caps=-all"]


@pytest.mark.parametrize("args,mode", [
    (["-L"], "exact"),
    (["-L", "-o", "extended,id"], "exact"),
    (["-L", "-f", "ipv6"], "exact"),
    (["-L", "-o", "labels"], "exact"),
    (["-C"], "exact"),       # prints the /proc count, then fails: exit 1
    (["-S"], "stats"),       # prints /proc/net/stat/nf_conntrack, exit 1
    (["-X"], "exact"),
    (["-L", "-o", "foo"], "exact"),
    (["-h"], "ignore"),
], ids=lambda v: _id(v) if isinstance(v, list) else v)
def test_unprivileged(popns, args, mode):
    o, c = compare(popns, args, stdout_mode=mode, wrapper=UNPRIV)
    if args in (["-L"], ["-C"], ["-S"]):
        assert o.rc == 1
        assert o.stderr.endswith(
            "Operation failed: sorry, you must be root or get CAP_NET_ADMIN "
            "capability to do this\n")


def test_unprivileged_flush(make_ns):
    """-F without CAP_NET_ADMIN: prints the 'emptied' message, then fails."""
    ns = make_ns(traffic=False)
    before = len(run(ns, CONNTRACK, ["-L"]).stdout.splitlines())
    o, c = compare(ns, ["-F"], stdout_mode="exact", wrapper=UNPRIV)
    assert o.rc == 1
    assert len(run(ns, CONNTRACK, ["-L"]).stdout.splitlines()) == before


@pytest.mark.parametrize("args", [["-F", "-l", "ctl-one"], ["-F", "--label-add", "ctl-one"],
                                  ["-S", "-l", "ctl-one"]], ids=_id)
def test_known_label_refused_where_conntrack_refuses(scratch_ns, labelmap, args):
    """A known label name passes the label check and is then refused by the
    option table: -F must not flush anything. (-C -l is ctl's filtered
    count: test_answers.py.)"""
    labelmap.skip_unless_intact()
    run(scratch_ns, CONNTRACK, ["-I", "-p", "udp", "-s", "10.9.9.1", "-d", "10.9.9.2",
                                "--sport", "1", "--dport", "2", "-t", "100"])
    compare(scratch_ns, args, stdout_mode="exact")
    assert "10.9.9.1" in run(scratch_ns, CONNTRACK, ["-L"]).stdout
