#!/usr/bin/env python3
"""Inputs for ctl-fuzz-args (make fuzz-args).

An input's first byte says what the rest is (see CTCommands'
FuzzArguments): even, a command line whose words are separated by NUL
bytes; odd, the text of a -R file.

  fuzz-args-corpus.py seeds DIR        command lines and -R files that use
                                       every command, table, option and
                                       output format
  fuzz-args-corpus.py dict FILE        a libFuzzer dictionary: every option
                                       name the parser knows (read from
                                       Sources/CTCommands/Arguments.swift),
                                       protocol, state, status, event and
                                       output names, and odd values
  fuzz-args-corpus.py regressions DIR  the hand-made nasty inputs of the
                                       regression corpus (committed; rerun
                                       only to regenerate them)
"""
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ARGUMENTS = os.path.join(HERE, "..", "Sources", "CTCommands", "Arguments.swift")

COMMAND_LINES = """\
-L
-L conntrack -o extended,id,labels,timestamp,ktimestamp,userspace
-L -p tcp --dport 80 -s 10.0.0.0/8 -o xml
-L -f ipv6 -s ::1 -d fe80::/10 -o json
-L -p udp --sport 53 -m 0x10/0xff -u ASSURED,SEEN_REPLY -w 7 -o save
-L -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1
-L -p icmpv6 --icmpv6-type 128 -f ipv6
-L -p gre --srckey 5 --dstkey 6
-L -p sctp --orig-vtag 5 --reply-vtag 6 --state ESTABLISHED
-L -p dccp --role client --state OPEN
-L -p tcp --state TIME_WAIT --orig-zone 3 --reply-zone 4
-L -n 1.2.3.4:80 -g --any-nat
-L -l ctl-one -l ctl-five
-L -z -c 5 -r 1.1.1.1 -q 2.2.2.2
-L --mask-src 255.0.0.0 -s 10.1.1.1 --mask-dst 255.255.0.0 -d 10.2.2.2
-L dying
-L unconfirmed
-L expect -o xml,timestamp
-G -p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2
-G -p tcp --orig-src 1.1.1.1 --orig-dst 2.2.2.2 --orig-port-src 1 --orig-port-dst 2 -o json -w 1
-D -m 1/0xff
-D -s 10.0.0.0/9 -p tcp
-D -i 4294967295
-D expect -s 1.1.1.1 -d 2.2.2.2 -p tcp --reply-port-src 1 --reply-port-dst 2
-I -p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 --state ESTABLISHED -t 100 -u ASSURED --label-add ctl-one
-I -p udp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 -r 2.2.2.2 -q 1.1.1.1 --reply-port-src 2 --reply-port-dst 1 -t 50 -m 7 -w 3
-I -r 1.1.1.1 -q 2.2.2.2 -p 17 -t 10
-I -p gre -s 1.1.1.1 -d 2.2.2.2 --srckey 1 --dstkey 2 --reply-key-src 2 --reply-key-dst 1 -t 10
-I -p sctp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 10
-I -p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 8 --icmp-code 0 --icmp-id 5 -t 10
-I -f ipv6 -p icmpv6 -s ::1 -d ::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 10
-I -p 200 -s 1.1.1.1 -d 2.2.2.2 -t 10 --src-nat 3.3.3.3 --dst-nat 4.4.4.4:80
-A -p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 --state SYN_SENT -t 10
-I expect -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 21 --tuple-src 1.1.1.1 --tuple-dst 2.2.2.2 --tuple-port-src 0 --tuple-port-dst 4000 --mask-src 255.255.255.255 --mask-dst 255.255.255.255 --mask-port-src 0 --mask-port-dst 65535 -t 100
-U -m 5 --label-del
-U -p tcp --state CLOSE -m 1/1 --label-add ctl-zero -u ASSURED -t 5
-U -s 1.1.1.1 --label-del ctl-one
-E -e NEW,DESTROY -o xml,timestamp -b 1000
-E -p udp --dport 53 -o json,id -e ALL
-E expect -o xml
-F
-F expect
-C
-C expect
-S
-S expect
-V
-h
--dump --protonum tcp --orig-port-dst 22 --output extended
--du -p6 --dport=22 -oextended
-L --netns web -p tcp
-L --group-by src,dport,state --top 10 -p tcp -o json
-E --group-by proto,label --interval 1 -e NEW
-C --all-netns -p udp
-L -- -p tcp
-L ! -s 1.1.1.1
-R /dev/null
"""

LOAD_FILES = [
    "-I -t 10 -u SEEN_REPLY,ASSURED -s 1.1.1.1 -d 2.2.2.2 -p 6 --sport 1 --dport 2 --state ESTABLISHED\n"
    "-A -t 10 -s 1.1.1.2 -d 2.2.2.2 -p 17 --sport 1 --dport 2 -w 3 -m 5\n"
    "# a comment\n\n"
    "-U -s 1.1.1.1 -m 9\n-D -p udp\n-F\n",
    '-I -s "1.1.1.1" -d 2.2.2.2\t-p  icmp --icmp-type 8 --icmp-code 0 --icmp-id 1 -t 5\n',
    "-L\n-E\n-I expect\n-R x\n",
]

ODD_VALUES = ["0", "-1", "4294967295", "4294967296", "18446744073709551616", "0x", "0xffffffff",
              "1/", "/1", "1.2.3.4/33", "::/129", "1.2.3", "::ffff:1.2.3.4", "1.2.3.4:", ":80",
              "[::1]:80", "", " ", ",", ",,", "=", "255.255.255.255", "999999999999999999999"]


def option_names():
    src = open(ARGUMENTS).read()
    base = src[src.index("private let baseOptions"):]
    base = base[:base.index("]\n")]
    proto = src[src.index("private func protocolOptions"):]
    proto = proto[:proto.index("\n}\n")]
    names = re.findall(r'\.init\("([a-z0-9-]+)", [012]', base) + re.findall(r'"([a-z0-9-]+)"', proto)
    short = re.search(r'private let shortOptions = "([^"]*)"', src).group(1)
    letters = sorted({c for c in short if c != ":"})
    return sorted(set(names)), letters


def command_line(words):
    return b"\x00" + b"\x00".join(w.encode() for w in words)


def load_file(text):
    return b"\x01" + text.encode()


def seeds(out):
    count = 0
    for i, line in enumerate(COMMAND_LINES.splitlines()):
        open(os.path.join(out, "argv-%02d" % i), "wb").write(command_line(shlex.split(line)))
        count += 1
    for i, text in enumerate(LOAD_FILES):
        open(os.path.join(out, "load-%02d" % i), "wb").write(load_file(text))
        count += 1
    return count


def dictionary(path):
    names, letters = option_names()
    words = ["--" + n for n in names] + ["-" + c for c in letters] + ["-R", "--load-file", "--netns", "--group-by", "--top",
                                                                      "--all-netns", "src", "reply-sport", "netns"]
    words += ["conntrack", "expect", "dying", "unconfirmed", "tcp", "udp", "udplite", "sctp",
              "dccp", "gre", "icmp", "icmpv6", "ipv4", "ipv6", "inet", "inet6"]
    words += ["extended", "xml", "json", "save", "timestamp", "id", "ktimestamp", "labels", "userspace"]
    words += ["NEW", "UPDATES", "DESTROY", "ALL", "ESTABLISHED", "SYN_SENT", "TIME_WAIT", "CLOSE",
              "OPEN", "client", "server", "ASSURED", "SEEN_REPLY", "EXPECTED", "FIXED_TIMEOUT",
              "SRC_NAT", "DST_NAT", "UNSET", "ctl-one", "ctl-zero"]
    words += ODD_VALUES
    with open(path, "w") as f:
        for w in words:
            escaped = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "\\x%02x" % ord(c) for c in w)
            if escaped:
                f.write('"%s"\n' % escaped)
            # A word as it follows another in an argv.
            f.write('"\\x00%s"\n' % escaped)
    return len(words)


def regressions():
    long_line = "-I " + " ".join(["-p", "tcp"] * 200) + "\n"
    return {
        "argv-empty": b"\x00",
        "argv-empty-words": b"\x00\x00\x00\x00",
        "argv-only-dashes": command_line(["-", "--", "---", "-=", "--="]),
        "argv-optional-args": command_line(["-L", "conn", "-i", "-n", "-g", "-j", "--label-del", "x", "-D"]),
        "argv-abbreviations": command_line(["--d", "--pro", "tcp", "--sp", "1", "--st", "EST"]),
        "argv-cluster": command_line(["-Lzo", "xml", "-p6", "--dport=1"]),
        "argv-protocol-twice": command_line(["-L", "-p", "tcp", "--dport", "1", "-p", "gre", "--srckey", "1"]),
        "argv-protocol-number": command_line(["-L", "-p", "255", "-p", "256", "-p", "-1"]),
        "argv-huge-numbers": command_line(["-L", "-m", "18446744073709551616/99999999999999999999",
                                           "-w", "65536", "-t", "4294967296", "-i", "4294967296"]),
        "argv-bad-addresses": command_line(["-L", "-s", "1.2.3.4/33", "-d", "::/129", "-r", "1.2.3",
                                            "-q", "[::1]", "--tuple-src", "::ffff:1.2.3.4"]),
        "argv-nat": command_line(["-I", "--src-nat", ":", "--dst-nat", "[::1]:", "-n", "1.2.3.4:99999"]),
        "argv-lists": command_line(["-L", "-o", ",,,", "-u", ",", "-e", "NEW,", "-o", "x" * 5000]),
        "argv-netns": command_line(["--netns", "-L", "--netns="]),
        "argv-netns-only": command_line(["--netns=a"]),
        "argv-group-by": command_line(["-L", "--group-by", "src,,src", "--top=0", "--group-by=", "--top",
                                       "99999999999999999999", "--all-netns", "-D", "--group-by"]),
        "argv-group-by-event": command_line(["-E", "--group-by", "netns,label", "--top", "-1", "--interval", "0",
                                             "--all-netns", "-o", "metrics"]),
        "argv-non-utf8": b"\x00-L\x00-s\x00\xff\xfe\x00-l\x00\xc3\x28",
        "argv-many-words": command_line(["-L"] + ["-z"] * 3000),
        "argv-load-first": command_line(["-R"]),
        "argv-load-extra": command_line(["-R", "file", "-L", "-p", "tcp"]),
        "load-empty": b"\x01",
        "load-no-newline": load_file("-I -p tcp"),
        "load-quotes": load_file('-I "-p tcp" "" """ -s "1.1.1.1\n-D "\n'),
        "load-nul": b"\x01-D -p tcp\x00 -s 1.1.1.1\n-F\x00\n",
        "load-crlf": load_file("-F\r\n-D -p tcp\r\n"),
        "load-long-line": load_file("-D " + "-z " * 5000 + "\n-F\n"),
        "load-too-many-words": load_file(long_line),
        "load-comments": load_file("#-F\n  # -F\n\t#\n-F #x\n"),
        "load-commands": load_file("-L\n-E\n-G\n-C\n-S\n-V\n-h\n-R x\n-I expect\n-L dying\n--netns x -F\n"),
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("seeds", "dict", "regressions"):
        sys.exit(__doc__)
    target = sys.argv[2]
    if sys.argv[1] == "dict":
        print(f"{dictionary(target)} words -> {target}")
        return
    os.makedirs(target, exist_ok=True)
    if sys.argv[1] == "seeds":
        print(f"{seeds(target)} inputs -> {target}")
    else:
        for name, raw in regressions().items():
            open(os.path.join(target, name), "wb").write(raw)
        print(f"{len(regressions())} inputs -> {target}")


if __name__ == "__main__":
    main()
