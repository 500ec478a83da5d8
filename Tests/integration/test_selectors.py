"""Selectors for -L: addresses (CIDR, masks), protocols and their options,
mark, status, zones, NAT, labels, secmark and combinations -- ctl against
conntrack 1.4.7 on the shared populated namespace.

Everything is compared exactly (see conftest.compare).  The observed conntrack semantics behind these cases are
summarised in the comments (and in the report of the test author).

Deliberate differences (marked ``oracle_differs``, skipped in self-test
mode): ctl rejects a number that is out of range or not a number at all
(exit 2, the bad value quoted on stderr) where conntrack 1.4.7 silently
truncates it or reads it as 0, and it does not crash on unknown SCTP states.
"""

import pytest

from conftest import (CONNTRACK, CTL, CTL_IS_ORACLE, compare, run)


def _id(args):
    return " ".join(a if a else "''" for a in args)


EXT = ["-o", "extended"]

# --------------------------------------------------------------- addresses

ADDRESS_CASES = [
    # orig/reply source/destination: plain equality on that tuple field
    ["-L", "-s", "10.10.0.1"],
    ["-L", "-s", "127.0.0.1", "-o", "extended"],
    ["-L", "-d", "10.99.0.1"],
    ["-L", "-d", "10.99.0.2"],
    ["-L", "-r", "10.99.0.2"],            # DNAT and SNAT entry
    ["-L", "-q", "10.99.0.1"],            # DNAT entry only
    ["-L", "-q", "10.99.0.3"],            # SNAT entry
    ["-L", "-r", "10.10.3.2", "-q", "10.10.3.1"],
    ["-L", "-s", "10.10.0.1", "-d", "10.10.0.2"],
    ["-L", "-s", "10.10.0.2"],            # nothing: reply side is not orig
    ["-L", "-d", "10.10.0.1"],
    ["-L", "-s", "1.2.3.4"],              # no such entry
    ["-L", "--src", "10.20.0.1"],
    ["-L", "--orig-src", "10.20.0.1"],
    ["-L", "--dst", "10.20.0.2"],
    ["-L", "--orig-dst", "10.20.0.2"],
    ["-L", "--reply-src", "10.20.0.2"],
    ["-L", "--reply-dst", "10.20.0.1"],
    ["-L", "-s", "0.0.0.0"],
    ["-L", "-d", "255.255.255.255"],
    ["-L", "-r", "255.255.255.255", "-q", "0.0.0.0"],
    # IPv6
    ["-L", "-s", "::1"],
    ["-L", "-s", "::1", "-o", "extended"],
    ["-L", "-s", "fd00::1"],
    ["-L", "-d", "fd00::1"],
    ["-L", "-r", "fd00::2"],
    ["-L", "-q", "fd00::3"],
    ["-L", "-s", "FD00::1"],              # case-insensitive hex
    ["-L", "-s", "fd00:0:0::1"],
    ["-L", "-s", "2001:db8:0:0:1:0:0:1"],
    ["-L", "-s", "2001:db8::1:0:0:1"],
    ["-L", "-d", "::ffff:10.0.0.1"],      # v4-mapped is an IPv6 address
    ["-L", "-d", "::1.2.3.4"],
    ["-L", "-s", "::"],
    ["-L", "-s", "::ffff:127.0.0.1"],     # not the IPv4 127.0.0.1
    # IPv4 is parsed like inet_aton
    ["-L", "-s", "127.1"],
    ["-L", "-s", "0x7f.0.0.1"],
    ["-L", "-s", "012.10.0.1"],           # octal 012 = 10
    ["-L", "-s", "10.10.1"],              # = 10.10.0.1
    ["-L", "-s", "10"],                   # = 0.0.0.10
    ["-L", "-s", "10.10.0.1 "],           # trailing blank accepted
    # CIDR for -s/-d
    ["-L", "-s", "10.10.0.0/16"],
    ["-L", "-s", "10.0.0.0/8", "-o", "extended"],
    ["-L", "-s", "10.10.0.1/32"],
    ["-L", "-s", "10.10.0.5/16"],         # host bits ignored
    ["-L", "-s", "0.0.0.0/0"],            # the whole IPv4 family
    ["-L", "-d", "10.10.0.0/24"],
    ["-L", "-d", "10.99.0.0/30"],
    ["-L", "-d", "255.255.255.255/1"],
    ["-L", "-s", "10.10.0.1/"],           # empty length = /0
    ["-L", "-s", "10.10.0.1/08"],         # decimal
    ["-L", "-s", "10.10.0.1/+8"],
    ["-L", "-s", "10.10.0.1/ 8"],
    ["-L", "-s", "10.10/16"],
    ["-L", "-s", "10.10.0.0/16", "-d", "10.10.0.0/24"],
    ["-L", "-s", "fd00::/16"],
    ["-L", "-s", "fd00::/16", "-o", "extended"],
    ["-L", "-s", "fd00::/128"],
    ["-L", "-s", "fd00:10::/32"],
    ["-L", "-s", "fd00:0::1/64"],
    ["-L", "-s", "::1/0"],                # the whole IPv6 family
    ["-L", "-s", "::1/"],
    ["-L", "-s", "::1/128"],
    ["-L", "-d", "2001:db8::/32"],
    ["-L", "-d", "fd00::/8"],
    ["-L", "-s", "fe80::/10"],
    # --mask-src / --mask-dst (any bit pattern; overrides a CIDR length)
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.255.0.0"],
    ["-L", "--mask-src", "255.255.0.0", "-s", "10.10.0.9"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.0.255.0"],   # non-contiguous
    ["-L", "-s", "10.10.0.9", "--mask-src", "0.0.0.0"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.255.255.255"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "24"],            # = 0.0.0.24
    ["-L", "-s", "10.10.0.9/8", "--mask-src", "255.255.0.0"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.0.0.0",
     "--mask-src", "255.255.0.0"],                              # last wins
    ["-L", "-d", "10.10.0.9", "--mask-dst", "255.255.255.0"],
    ["-L", "-d", "10.99.0.7", "--mask-dst", "255.255.255.252"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "255.255.0.0", "-d", "10.10.0.2",
     "--mask-dst", "255.255.255.255"],
    ["-L", "-s", "fd00:10::9", "--mask-src", "ffff:ffff::"],
    ["-L", "-d", "fd00:10::9", "--mask-dst", "ffff:ffff:ffff::"],
    ["-L", "-s", "fd00::1/16", "--mask-src", "ffff:ffff:ffff:ffff::"],
    # family
    ["-L", "-f", "ipv4", "-s", "127.0.0.1"],
    ["-L", "-s", "127.0.0.1", "-f", "ipv4"],
    ["-L", "-f", "ipv6", "-s", "::1"],
    ["-L", "-f", "ipv6", "-p", "tcp"],
    ["-L", "-f", "ipv4", "-p", "icmpv6"],
    ["-L", "-f", "ipv6", "-p", "icmp"],
    # repeated: last wins
    ["-L", "-s", "1.1.1.1", "-s", "127.0.0.1"],
    ["-L", "-r", "1.1.1.1", "-r", "127.0.0.1"],
]


@pytest.mark.parametrize("args", ADDRESS_CASES, ids=_id)
def test_address_selectors(popns, args):
    compare(popns, args)


# --------------------------------------------------------------- protocols

PROTO_CASES = [
    # -p by built-in name (case-insensitive), /etc/protocols name
    # (case-sensitive, aliases), or number (strtoul base 0, 0..255)
    *[["-L", "-p", p] for p in [
        "tcp", "TCP", "Tcp", "6", "udp", "Udp", "17", "udplite", "UDPLITE",
        "sctp", "SCTP", "dccp", "gre", "GRE", "icmp", "ICMP", "1", "icmpv6",
        "ICMPv6", "58", "ipv6-icmp", "IPv6-ICMP", "200", "0", "255", "253",
        "esp", "IPSEC-ESP", "50", "ip", "igmp", "06", "0x6", "021", " 6"]],
    ["-L", "-p", "tcp", "-o", "extended"],
    ["-L", "-p", "tcp", "-p", "udp"],                    # last wins
    # protocol options exist for built-in names and their numbers
    ["-L", "-p", "58", "--icmpv6-type", "128"],
    ["-L", "-p", "132", "--state", "ESTABLISHED"],
    ["-L", "-p", "17", "--dport", "53"],
    ["-L", "-p", "0x11", "--sport", "53"],
    # ports on the orig and reply tuple
    ["-L", "-p", "tcp", "--dport", "80"],
    ["-L", "-p", "6", "--dport", "80"],
    ["-L", "-p", "tcp", "--sport", "1003"],
    ["-L", "-p", "tcp", "--sport", "1003", "--dport", "80"],
    ["-L", "-p", "tcp", "--sport", "1003", "--dport", "81"],
    ["-L", "-p", "tcp", "--orig-port-src", "1003"],
    ["-L", "-p", "tcp", "--orig-port-dst", "8080"],
    ["-L", "-p", "tcp", "--reply-port-src", "8080"],     # inserted entry
    ["-L", "-p", "tcp", "--reply-port-src", "8081"],     # real DNAT v4 + v6
    ["-L", "-p", "tcp", "--reply-port-dst", "5001"],
    ["-L", "-p", "tcp", "--reply-port-src", "80", "--reply-port-dst", "1003"],
    ["-L", "-p", "tcp", "--dport", "5001"],
    ["-L", "-p", "tcp", "--dport", "22", "-o", "extended"],
    ["-L", "-p", "udp", "--dport", "53"],
    ["-L", "-p", "udp", "--sport", "0"],
    ["-L", "-p", "udp", "--dport", "65535"],
    ["-L", "-p", "udp", "--dport", "0"],
    ["-L", "-p", "udp", "--reply-port-src", "53"],
    ["-L", "-p", "udplite", "--sport", "1000"],
    ["-L", "-p", "udplite", "--reply-port-dst", "1000"],
    ["-L", "-p", "sctp", "--sport", "7000"],
    ["-L", "-p", "sctp", "--dport", "36412"],
    ["-L", "-p", "sctp", "--reply-port-dst", "7000"],
    ["-L", "-p", "udp", "--dport", "53", "-p", "tcp"],   # ports kept, proto last
    ["-L", "-p", "tcp", "--dport", "80", "-p", "udp"],
    # decimal port syntax conntrack accepts (atoi-like, base 10)
    ["-L", "-p", "tcp", "--dport", "080"],
    ["-L", "-p", "tcp", "--dport", "0120"],               # 120, not octal
    ["-L", "-p", "tcp", "--sport", "01003"],
    ["-L", "-p", "tcp", "--reply-port-src", "08081"],
    ["-L", "-p", "tcp", "--orig-port-dst", "08080"],
    # DCCP: this kernel has no DCCP tracker, the entry has no ports and no
    # state, so port and state filters never match it
    ["-L", "-p", "dccp", "--sport", "0"],
    ["-L", "-p", "dccp", "--sport", "5004"],
    ["-L", "-p", "dccp", "--state", "OPEN"],
    *[["-L", "-p", "dccp", "--state", s] for s in [
        "NONE", "REQUEST", "RESPOND", "PARTOPEN", "CLOSEREQ", "CLOSING",
        "TIMEWAIT", "IGNORE", "INVALID"]],
    # TCP states (exact upper-case names; LISTEN is SYN_SENT2)
    *[["-L", "-p", "tcp", "--state", s] for s in [
        "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
        "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "LISTEN",
        "SYN_SENT2"]],
    ["-L", "-p", "tcp", "--state", "ESTABLISHED", "--dport", "80"],
    ["-L", "-p", "tcp", "--state", "TIME_WAIT", "-f", "ipv6"],
    # SCTP states
    *[["-L", "-p", "sctp", "--state", s] for s in [
        "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED",
        "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT"]],
    ["-L", "-p", "sctp", "--state", "ESTABLISHED", "--sport", "7000"],
    # ICMP / ICMPv6: orig tuple only; decimal values
    ["-L", "-p", "icmp", "--icmp-type", "8"],
    ["-L", "-p", "icmp", "--icmp-type", "13"],
    ["-L", "-p", "icmp", "--icmp-type", "0"],             # echo reply: none
    ["-L", "-p", "icmp", "--icmp-code", "0"],
    ["-L", "-p", "icmp", "--icmp-code", "00"],
    ["-L", "-p", "icmp", "--icmp-id", "77"],
    ["-L", "-p", "icmp", "--icmp-id", "0"],
    ["-L", "-p", "icmp", "--icmp-type", "010"],           # decimal 10
    ["-L", "-p", "icmp", "--icmp-id", "0115"],            # decimal 115
    ["-L", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0",
     "--icmp-id", "77"],
    ["-L", "-p", "icmp", "--icmp-type", "8", "-o", "extended"],
    ["-L", "-p", "icmpv6", "--icmpv6-type", "128"],
    ["-L", "-p", "icmpv6", "--icmpv6-type", "129"],
    ["-L", "-p", "icmpv6", "--icmpv6-code", "0"],
    ["-L", "-p", "icmpv6", "--icmpv6-code", "1"],
    ["-L", "-p", "icmpv6", "--icmpv6-id", "65535"],
    # GRE keys are accepted and ignored by -L
    ["-L", "-p", "gre", "--srckey", "0x10"],
    ["-L", "-p", "gre", "--srckey", "16"],
    ["-L", "-p", "gre", "--orig-key-src", "1"],
    ["-L", "-p", "gre", "--dstkey", "2"],
    ["-L", "-p", "gre", "--orig-key-dst", "0xffff"],
    ["-L", "-p", "gre", "--reply-key-src", "5"],
    ["-L", "-p", "gre", "--reply-key-dst", "0x10"],
    ["-L", "-p", "gre", "--srckey", "0x10", "--dstkey", "0xffff", "-f", "ipv4"],
]


@pytest.mark.parametrize("args", PROTO_CASES, ids=_id)
def test_protocol_selectors(popns, args):
    compare(popns, args)


# --------------------------------------------------------------- meta data

META_CASES = [
    # -m MARK[/MASK]: strtoul base 0; entry matches if (mark & MASK) == MARK
    ["-L", "-m", "42"],
    ["-L", "-m", "0x2a"],
    ["-L", "-m", "0X2a"],
    ["-L", "-m", "052"],                  # octal 42
    ["-L", "-m", "042"],                  # octal 34: nothing
    ["-L", "-m", "0"],
    ["-L", "-m", "7"],
    ["-L", "-m", "16", "-o", "extended"],
    ["-L", "-m", "4294967295"],
    ["-L", "-m", "0xffffffff"],
    ["-L", "-m", "7/7"],
    ["-L", "-m", "0/0xff"],
    ["-L", "-m", "0/0"],
    ["-L", "-m", "0x2a/0xff"],
    ["-L", "-m", "42/0377"],
    ["-L", "-m", "0xffffffff/0xffff0000"],   # MARK is not masked: nothing
    ["-L", "-m", "0xffff0000/0xffff0000"],
    ["-L", "-m", "2/2"],
    ["-L", "-m", "0/1"],
    ["-L", "--mark", "42"],
    # -u: AND of the listed bits; prefixes, case-insensitive
    ["-L", "-u", "ASSURED"],
    ["-L", "-u", "assured"],
    ["-L", "-u", "ASS"],
    ["-L", "-u", "A"],
    ["-L", "-u", "SEEN_REPLY"],
    ["-L", "-u", "Seen_Reply"],
    ["-L", "-u", "SE"],
    ["-L", "-u", "FIXED_TIMEOUT"],
    ["-L", "-u", "FIX"],
    ["-L", "-u", "EXPECTED"],
    ["-L", "-u", "OFFLOAD"],
    ["-L", "-u", "HW_OFFLOAD"],
    ["-L", "-u", "ASSURED,SEEN_REPLY"],
    ["-L", "-u", "SEEN_REPLY,ASSURED"],
    ["-L", "-u", "ASSURED,UNSET"],
    ["-L", "-u", "EXPECTED,ASSURED"],
    ["-L", "--status", "SEEN_REPLY", "-o", "extended"],
    # SRC_NAT/DST_NAT (any prefix, checked first: "S" is SRC_NAT) only warn
    ["-L", "-u", "SRC_NAT,ASSURED"],
    ["-L", "-u", "SEEN_REPLY,S"],
    ["-L", "-u", "ASSURED,dst_nat"],
    # UNSET (or only SRC_NAT/DST_NAT) alone: an empty status mask, which the
    # kernel rejects -> "Operation failed: invalid parameters", exit 1
    ["-L", "-u", "UNSET"],
    ["-L", "-u", "UN"],
    ["-L", "-u", "UNSET,UNSET"],
    ["-L", "-u", "SRC_NAT"],
    ["-L", "-u", "S"],
    ["-L", "-u", "d"],
    # repeated -u: value = OR of all, mask = bits of the first -u that had
    # any (a conntrack 1.4.7 quirk of the kernel-side status filter)
    ["-L", "-u", "ASSURED", "-u", "SEEN_REPLY"],
    ["-L", "-u", "SEEN_REPLY", "-u", "ASSURED"],
    ["-L", "-u", "ASSURED,SEEN_REPLY", "-u", "SEEN_REPLY"],
    ["-L", "-u", "SEEN_REPLY", "-u", "ASSURED,SEEN_REPLY"],
    ["-L", "-u", "UNSET", "-u", "ASSURED"],
    ["-L", "-u", "ASSURED", "-u", "ASSURED"],
    ["-L", "-u", "SEEN_REPLY", "-u", "UNSET"],
    ["-L", "-u", "FIXED_TIMEOUT", "-u", "UNSET"],
    # ORDER-DEPENDENT quirk: every -u after a -m overwrites the value of
    # the userspace mark check with the accumulated status bits (the kernel
    # filter keeps the -m values); a later -m sets it again
    ["-L", "-m", "0/0", "-u", "ASSURED"],                 # nothing
    ["-L", "-u", "ASSURED", "-m", "0/0"],                 # all ASSURED
    ["-L", "-m", "0/0", "-u", "ASSURED", "-m", "0/0"],
    ["-L", "-m", "0x4/0x4", "-u", "ASSURED"],
    ["-L", "-m", "0x2/0x2", "-u", "SEEN_REPLY"],
    ["-L", "-m", "0x2/0x2", "-u", "ASSURED"],
    ["-L", "-m", "0", "-u", "ASSURED"],
    ["-L", "-u", "ASSURED", "-m", "0"],
    ["-L", "-m", "6/6", "-u", "ASSURED,SEEN_REPLY", "-u", "SEEN_REPLY"],
    ["-L", "-u", "ASSURED,SEEN_REPLY", "-m", "4/4", "-u", "ASSURED"],
    ["-L", "-u", "ASSURED,SEEN_REPLY", "-m", "6/6", "-u", "SEEN_REPLY"],
    ["-L", "-u", "SEEN_REPLY", "-m", "0/0", "-u", "ASSURED"],
    ["-L", "-m", "7/7", "-m", "42"],                      # last -m wins
    # zones: -w = the entry zone (direction-only zones count as 0),
    # --orig-zone/--reply-zone = the tuple zones; strtoul base 0
    ["-L", "-w", "7"],
    ["-L", "-w", "5"],
    ["-L", "-w", "9", "-o", "extended"],
    ["-L", "-w", "0"],
    ["-L", "-w", "11"],
    ["-L", "-w", "12"],
    ["-L", "-w", "65535"],
    ["-L", "-w", "0x7"],
    ["-L", "-w", "07"],
    ["-L", "-w", "011"],                  # octal 9
    ["-L", "--zone", "7"],
    ["-L", "--orig-zone", "11"],
    ["-L", "--orig-zone", "013"],
    ["-L", "--orig-zone", "0"],
    ["-L", "--orig-zone", "7"],
    ["-L", "--reply-zone", "12"],
    ["-L", "--reply-zone", "014"],
    ["-L", "--reply-zone", "0"],
    ["-L", "--reply-zone", "7"],
    ["-L", "--orig-zone", "11", "--reply-zone", "0"],
    ["-L", "--orig-zone", "11", "-w", "0"],
    ["-L", "-w", "7", "-p", "udp"],
    # -c SECMARK: accepted and ignored by -L
    ["-L", "-c", "0"],
    ["-L", "-c", "5", "-s", "10.10.0.1"],
    ["-L", "--secmark", "1", "-p", "udp"],
]


@pytest.mark.parametrize("args", META_CASES, ids=_id)
def test_meta_selectors(popns, args):
    mode = "listing"
    compare(popns, args, stdout_mode=mode)


# --------------------------------------------------------------- NAT

NAT_CASES = [
    # without address: SRC_NAT_DONE/DST_NAT_DONE status bit and a tuple
    # difference (address or the raw l4 field: real ICMP echo entries count)
    ["-L", "-n"],
    ["-L", "-g"],
    ["-L", "-j"],
    ["-L", "--src-nat"],
    ["-L", "--dst-nat", "-o", "extended"],
    ["-L", "--any-nat"],
    ["-L", "-n", "-g"],
    ["-L", "-n", "-p", "icmp"],
    ["-L", "-j", "-f", "ipv4"],
    ["-L", "-j", "-f", "ipv6"],
    ["-L", "-g", "-p", "tcp"],
    ["-L", "-n", "-s", "10.99.0.1"],
    # IPv4 address: the NAT address (reply dst for -n, reply src for -g)
    ["-L", "-n", "10.99.0.3"],
    ["-L", "-n", "10.99.0.1"],
    ["-L", "-n", "10.99.0.2"],
    ["-L", "-g", "10.99.0.2"],
    ["-L", "-g", "10.99.0.1"],
    ["-L", "-g", "127.0.0.1"],
    ["-L", "-n", "127.0.0.1"],
    ["-L", "-j", "10.99.0.2"],
    ["-L", "-j", "10.99.0.3"],
    ["-L", "-j", "10.99.0.1"],
    ["-L", "-j", "127.0.0.1"],
    ["-L", "-j", "1.2.3.4"],
    ["-L", "-n", "10.99.0.3", "-g"],
    ["-L", "--src-nat", "10.99.0.3", "-p", "tcp"],
    # with a port (must have been translated, and equal)
    ["-L", "-g", "10.99.0.2:8081"],
    ["-L", "-g", "10.99.0.2:8080"],
    ["-L", "-g", "10.99.0.2:08081"],
    ["-L", "-g", "10.99.0.2:0"],
    ["-L", "-j", "10.99.0.2:8081"],
    ["-L", "-n", "10.99.0.3:9000"],
    ["-L", "-g", "[10.99.0.2]:8081"],
    # IPv6: the address itself is not compared (only the family)
    ["-L", "-n", "fd00::3"],
    ["-L", "-n", "fd00::99"],
    ["-L", "-g", "fd00::2"],
    ["-L", "-g", "::"],
    ["-L", "-j", "fd00::2"],
    ["-L", "-g", "[fd00::2]:8081"],
    ["-L", "-g", "[fd00::2]:8080"],
    ["-L", "-g", "fd00::2:8081"],          # an address, not address:port
]


@pytest.mark.parametrize("args", NAT_CASES, ids=_id)
def test_nat_selectors(popns, args):
    compare(popns, args)


# --------------------------------------------------------------- labels

LABEL_CASES = [
    # names from the label map; an entry must carry ALL given labels
    # (comma list and repeated -l); -l implies label output
    ["-L", "-l", "ctl-one"],
    ["-L", "-l", "ctl-zero"],
    ["-L", "-l", "ctl-five"],
    ["-L", "-l", "ctl-last"],
    ["-L", "--label", "ctl-last", "-o", "extended"],
    ["-L", "-l", "ctl-one,ctl-five"],
    ["-L", "-l", "ctl-five,ctl-last"],
    ["-L", "-l", "ctl-one", "-l", "ctl-last"],
    ["-L", "-l", "ctl-five", "-l", "ctl-last"],
    ["-L", "-l", "ctl-zero", "-l", "ctl-one"],
    ["-L", "-l", "ctl-one", "-o", "labels"],
    ["-L", "-l", "ctl-one", "-o", "xml"],
    ["-L", "-l", "ctl-one", "-s", "127.0.0.1"],
    ["-L", "-l", "ctl-one", "-s", "127.0.0.1", "-d", "10.0.0.0/8"],
    ["-L", "-l", "ctl-one", "-f", "ipv6"],
    ["-L", "-l", "ctl-zero", "-f", "ipv6", "-p", "tcp", "--dport", "80"],
    # errors (exit 2)
    ["-L", "-l", "foo"],
    ["-L", "-l", "1"],
    ["-L", "-l", "ctl-one,foo"],
    ["-L", "-l", ""],
    ["-L", "-l", "ctl-one,"],
    ["-L", "-l", ",ctl-one"],
    ["-L", "-l", "CTL-ONE"],
    ["-L", "-l", "ctl-one ctl-five"],
    ["-L", "-l", "ctl-one", "-z"],
]


@pytest.mark.parametrize("args", LABEL_CASES, ids=_id)
def test_label_selectors(popns, labelmap, args):
    labelmap.skip_unless_intact()
    compare(popns, args)


# --------------------------------------------------------------- combinations

COMBO_CASES = [
    ["-L", "-u", "ASSURED", "-m", "42"],
    ["-L", "-u", "ASSURED", "-m", "42", "-p", "udp"],
    ["-L", "-s", "10.10.0.0/16", "-u", "ASSURED"],
    ["-L", "-s", "10.10.0.0/16", "-m", "7", "-p", "tcp", "--dport", "22"],
    ["-L", "-s", "127.0.0.1", "-p", "tcp", "--dport", "5003", "-m", "42"],
    ["-L", "-s", "127.0.0.0/8", "-p", "tcp", "--state", "ESTABLISHED",
     "-u", "ASSURED", "-o", "extended"],
    ["-L", "-q", "127.0.0.1", "-r", "127.0.0.1", "-f", "ipv4", "-p", "icmp",
     "--icmp-type", "8"],
    ["-L", "-f", "ipv6", "-p", "tcp", "--state", "ESTABLISHED"],
    ["-L", "-w", "9", "-m", "16", "-f", "ipv6"],
    ["-L", "-w", "9", "-m", "17"],
    ["-L", "-g", "-s", "10.99.0.1", "-p", "tcp", "--dport", "8080"],
    ["-L", "-n", "-u", "ASSURED"],
    ["-L", "-d", "10.10.3.0/24", "-p", "tcp", "--reply-port-src", "8080"],
    ["-L", "-s", "fd00::/16", "-p", "udp", "--dport", "9001", "-n"],
    ["-L", "-s", "10.30.0.1", "-p", "sctp", "--state", "ESTABLISHED",
     "--dport", "36412"],
    ["-L", "-s", "10.20.0.0/16", "-p", "udp", "-u", "SEEN_REPLY"],
    ["-L", "-m", "0/0", "-u", "ASSURED", "-w", "0", "-c", "1"],
    ["-L", "-p", "tcp", "--dport", "5302", "-w", "7", "-o", "extended"],
]


@pytest.mark.parametrize("args", COMBO_CASES, ids=_id)
def test_combined_selectors(popns, args):
    compare(popns, args)


# --------------------------------------------------------------- bad values

# conntrack 1.4.7 rejects these while parsing (exit 2, "Try ..." line), or
# (last group) the kernel rejects the request (exit 1).
BAD_SELECTOR_CASES = [
    # addresses / CIDR / masks
    ["-L", "-s", "256.1.1.1"],
    ["-L", "-s", "1.2.3.4.5"],
    ["-L", "-s", ""],
    ["-L", "-s", " 10.10.0.1"],
    ["-L", "-s", "/8"],
    ["-L", "-s", "fd00::1%lo"],
    ["-L", "-s", "[::1]"],
    ["-L", "-d", "foo"],
    ["-L", "-r", "foo"],
    ["-L", "-s", "10.10.0.1/33"],
    ["-L", "-s", "10.10.0.1/-1"],
    ["-L", "-s", "10.10.0.1/abc"],
    ["-L", "-s", "10.10.0.1/8x"],
    ["-L", "-s", "1.2.3.4/0x10"],
    ["-L", "-s", "1.2.3.4/1e1"],
    ["-L", "-s", "1.2.3.4/32.0"],
    ["-L", "-s", "127.0.0.1/255.0.0.0"],
    ["-L", "-s", "10.10.0.1/8/8"],
    ["-L", "-d", "10.10.0.1/33"],
    ["-L", "-s", "fd00::1/129"],
    ["-L", "-s", "::1/abc"],
    ["-L", "-s", "::1/-1"],
    ["-L", "-r", "10.99.0.0/24"],         # CIDR notation unavailable
    ["-L", "-q", "10.99.0.0/30"],
    ["-L", "-r", "fd00::/64"],
    ["-L", "-q", "fd00::3/128"],
    ["-L", "-r", "10.99.0.2/"],
    ["-L", "-r", "10.99.0.2/32"],
    ["-L", "-r", "10.99.0.2/abc"],
    ["-L", "-n", "10.99.0.3/24"],
    ["-L", "-g", "10.99.0.3/24"],
    ["-L", "-j", "10.99.0.3/24"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "foo"],
    ["-L", "-s", "10.10.0.9", "--mask-src", "ffff::"],
    ["-L", "-s", "fd00:10::9", "--mask-src", "255.255.0.0"],
    ["-L", "--mask-src", "255.0.0.0", "-s", "::1"],
    ["-L", "--mask-dst", "255.0.0.0", "-s", "127.0.0.1"],
    ["-L", "--mask-src", "255.0.0.0", "-d", "127.0.0.1"],
    ["-L", "-s", "::1", "-d", "127.0.0.1"],
    ["-L", "-s", "127.0.0.1", "-r", "::1"],
    ["-L", "-s", "127.0.0.1", "-q", "::1"],
    ["-L", "-d", "::1", "-q", "127.0.0.1"],
    ["-L", "-s", "127.0.0.1", "-f", "ipv6"],
    ["-L", "-f", "ipv6", "-s", "127.0.0.1"],
    ["-L", "-f", "ipv4", "-d", "::1"],
    ["-L", "-n", "10.99.0.3", "-f", "ipv6"],
    ["-L", "-s", "::1", "-g", "10.99.0.2"],
    # protocol
    ["-L", "-p", "256"],
    ["-L", "-p", "-1"],
    ["-L", "-p", "0x100"],
    ["-L", "-p", "1e1"],
    ["-L", "-p", "6 "],
    ["-L", "-p", "unknown"],
    ["-L", "-p", "udp-lite"],
    ["-L", "-p", "Esp"],
    ["-L", "-p", "IPV6-ICMP"],
    ["-L", "-p", ""],
    ["-L", "-p", "tcp", "--state", "established"],
    ["-L", "-p", "tcp", "--state", "Est"],
    ["-L", "-p", "tcp", "--state", ""],
    ["-L", "-p", "tcp", "--state", "ESTABLISHED,CLOSE"],
    ["-L", "-p", "tcp", "--state", "FOO", "--dport", "1"],
    ["-L", "-p", "dccp", "--state", "FOO"],
    ["-L", "-p", "dccp", "--state", "open"],
    ["-L", "-p", "dccp", "--role", "foo"],
    ["-L", "-p", "dccp", "--role", "client"],   # Illegal option `--role'
    ["-L", "-p", "sctp", "--orig-vtag", "1"],   # Illegal option
    ["-L", "-p", "sctp", "--reply-vtag", "1"],
    ["-L", "-p", "gre", "--mask-key-src", "1"],
    ["-L", "-p", "gre", "--tuple-key-src", "1"],
    ["-L", "-p", "tcp", "--mask-port-src", "1"],
    ["-L", "-p", "tcp", "--tuple-port-src", "1"],
    ["-L", "-p", "icmpv6", "--icmp-type", "128"],   # unknown option
    ["-L", "-p", "icmp", "--icmpv6-type", "128"],
    ["-L", "-p", "udp", "--state", "ESTABLISHED"],
    # ... but not for /etc/protocols names: unknown option
    ["-L", "-p", "ipv6-icmp", "--icmpv6-type", "128"],
    ["-L", "-p", "IPv6-ICMP", "--icmpv6-type", "128"],
    ["-L", "-p", "esp", "--dport", "1"],
    ["-L", "-p", "200", "--dport", "1"],
    ["-L", "--dport", "80", "-p", "tcp"],
    # status
    ["-L", "-u", "CONFIRMED"],
    ["-L", "-u", "DYING"],
    ["-L", "-u", "SEQ_ADJUST"],
    ["-L", "-u", "SRC_NAT_DONE"],
    ["-L", "-u", "TEMPLATE"],
    ["-L", "-u", "UNTRACKED"],
    ["-L", "-u", "HELPER"],
    ["-L", "-u", "NAT_CLASH"],
    ["-L", "-u", "2"],
    ["-L", "-u", "ASSUREDX"],
    ["-L", "-u", "FIXED_TIMEOUTS"],
    ["-L", "-u", "ASSURED,"],
    ["-L", "-u", ",ASSURED"],
    ["-L", "-u", "ASSURED,foo,SEEN_REPLY"],   # the rest of the list is quoted
    ["-L", "-u", "foo,ASSURED"],
    ["-L", "-u", "ASSURED,,SEEN_REPLY"],
    ["-L", "-u", "ASSURED,SEEN_REPLY,x"],
    ["-L", "-u", "ASSURED "],
    ["-L", "-u", " ASSURED"],
    ["-L", "-u", ""],
    # NAT
    ["-L", "-n", "foo"],
    ["-L", "-n", "-j"],
    ["-L", "-g", "-j"],
    ["-L", "-j", "10.99.0.2", "-n", "10.99.0.3"],
    ["-L", "-n", "10.99.0.3:foo"],
    ["-L", "-n", "10.99.0.3:70000"],
    ["-L", "-g", "10.99.0.2:"],
    ["-L", "-g", "10.99.0.2:0x1f91"],
    ["-L", "-g", "10.99.0.2:+8081"],
    ["-L", "-g", "10.99.0.2: 8081"],
    ["-L", "-g", "10.99.0.2:8081x"],
    ["-L", "-g", "10.99.0.2:-1"],
    ["-L", "-g", "10.99.0.2:65536"],
    ["-L", "-g", "10.99.0.2::8081"],
    ["-L", "-g", "[fd00::2]"],
    ["-L", "-g", "[fd00::2]:"],
    ["-L", "-g", "[fd00::2"],
    ["-L", "-g", "fd00::2]:8081"],
    # -z with filters
    ["-L", "-z", "-s", "1.1.1.1"],
    ["-L", "-p", "tcp", "-z"],
    ["-L", "-m", "1", "-z"],
    ["-L", "-z", "-c", "1"],
    ["-L", "-u", "ASSURED", "-z"],
    ["-L", "-n", "-z"],
    ["-L", "--orig-zone", "1", "-z"],
    # first error wins (command-line order)
    ["-L", "-s", "foo", "-p", "bar"],
    ["-L", "-p", "bar", "-s", "foo"],
    ["-L", "-u", "foo", "-s", "1.2.3.4/33"],
    ["-L", "-s", "1.2.3.4/33", "-u", "foo"],
    ["-L", "-u", "bar", "-m", "1", "-z"],
    ["-L", "-s", "::1", "-d", "1.2.3.4", "-p", "foo"],
    ["-L", "-p", "foo", "-s", "::1", "-d", "1.2.3.4"],
    ["-L", "-s", "1.1.1.1", "-d", "::1", "-u", "foo"],
    ["-L", "--mask-src", "255.0.0.0", "-u", "foo"],
    ["-L", "-z", "-u", "foo"],
    ["-L", "-p", "tcp", "--state", "FOO", "-s", "foo"],
    # missing arguments
    ["-L", "-s"],
    ["-L", "-d"],
    ["-L", "-r"],
    ["-L", "-q"],
    ["-L", "-n", "-s"],
    ["-L", "-l"],
    ["-L", "-c"],
    ["-L", "--mask-src"],
    ["-L", "-p", "tcp", "--state"],
    ["-L", "-p", "icmp", "--icmp-type"],
    # Illegal option with -L
    ["-L", "-t", "5"],
    ["-L", "-i", "5"],
    ["-L", "--label-add", "ctl-one"],
    ["-L", "--label-del", "ctl-one"],
]


@pytest.mark.parametrize("args", BAD_SELECTOR_CASES, ids=_id)
def test_bad_selector_values(scratch_ns, args):
    """Rejected by conntrack (exit 2, or 1 for a kernel error); must be
    rejected by ctl with the same message.  Checked in an empty namespace."""
    compare(scratch_ns, args, stdout_mode="exact")


KERNEL_REJECTED = [
    # an empty status mask is sent to the kernel, which answers EINVAL:
    # "Operation failed: invalid parameters", exit 1, no summary line
    ["-L", "-u", "UNSET"],
    ["-L", "-u", "SRC_NAT"],
    ["-L", "-u", "DST_NAT,UNSET"],
]


@pytest.mark.parametrize("args", KERNEL_REJECTED, ids=_id)
def test_kernel_rejected_status_mask(popns, args):
    o, _ = compare(popns, args, stdout_mode="exact")
    assert o.rc == 1 and "Operation failed: invalid parameters" in o.stderr


# --------------------------------------------------------------- deliberate

# (args, the bad value that must be quoted in ctl's message)
REJECTED_BY_CTL = [
    # ports out of 0..65535: conntrack truncates them (65616 = 80)
    (["-L", "-p", "tcp", "--dport", "65616"], "65616"),
    (["-L", "-p", "tcp", "--dport", "65536"], "65536"),
    (["-L", "-p", "udp", "--dport", "-1"], "-1"),
    (["-L", "-p", "tcp", "--sport", "4294967376"], "4294967376"),
    (["-L", "-p", "tcp", "--orig-port-src", "99999999999999"], "99999999999999"),
    (["-L", "-p", "tcp", "--reply-port-src", "70000"], "70000"),
    (["-L", "-p", "udp", "--reply-port-dst", "-65456"], "-65456"),
    (["-L", "-p", "sctp", "--dport", "100000"], "100000"),
    (["-L", "-p", "udplite", "--sport", "65536"], "65536"),
    # not a number where a port is needed: conntrack reads 0 / the prefix
    (["-L", "-p", "tcp", "--dport", "foo"], "foo"),
    (["-L", "-p", "tcp", "--dport", "80x"], "80x"),
    (["-L", "-p", "tcp", "--dport", ""], "`'"),
    (["-L", "-p", "udp", "--sport", "foo"], "foo"),
    (["-L", "-p", "tcp", "--orig-port-dst", "1.5"], "1.5"),
    (["-L", "-p", "tcp", "--reply-port-dst", "abc"], "abc"),
    (["-L", "-p", "dccp", "--sport", "x1"], "x1"),
    (["-L", "-p", "tcp", "--dport", "0x50"], "0x50"),   # conntrack: 0
    # other numbers: ICMP type/code 0..255, id 0..65535, zones 0..65535,
    # marks 0..2^32-1 (conntrack truncates, reads junk as 0)
    (["-L", "-p", "icmp", "--icmp-type", "264"], "264"),
    (["-L", "-p", "icmp", "--icmp-type", "foo"], "foo"),
    (["-L", "-p", "icmp", "--icmp-code", "256"], "256"),
    (["-L", "-p", "icmp", "--icmp-id", "65613"], "65613"),
    (["-L", "-p", "icmp", "--icmp-type", "0x8"], "0x8"),
    (["-L", "-p", "icmpv6", "--icmpv6-type", "384"], "384"),
    (["-L", "-p", "icmpv6", "--icmpv6-id", "x"], "x"),
    (["-L", "-w", "65536"], "65536"),
    (["-L", "-w", "65543"], "65543"),
    (["-L", "-w", "-1"], "-1"),
    (["-L", "-w", "foo"], "foo"),
    (["-L", "-w", "7x"], "7x"),
    (["-L", "-w", ""], "`'"),
    (["-L", "--orig-zone", "65547"], "65547"),
    (["-L", "--orig-zone", "foo"], "foo"),
    (["-L", "--reply-zone", "-1"], "-1"),
    (["-L", "-m", "4294967296"], "4294967296"),
    (["-L", "-m", "99999999999999999999"], "99999999999999999999"),
    (["-L", "-m", "-1"], "-1"),
    (["-L", "-m", "foo"], "foo"),
    (["-L", "-m", "42x"], "42x"),
    (["-L", "-m", ""], "`'"),
    (["-L", "-m", "42/"], "42/"),
    (["-L", "-m", "42/foo"], "foo"),
    (["-L", "-m", "/5"], "/5"),
    (["-L", "-m", "1/2/3"], "2/3"),
    # GRE keys are numbers too (ignored by the oracle's -L anyway)
    (["-L", "-p", "gre", "--srckey", "foo"], "foo"),
    # unknown SCTP states: conntrack 1.4.7 crashes (SIGSEGV)
    (["-L", "-p", "sctp", "--state", "FOO"], "FOO"),
    (["-L", "-p", "sctp", "--state", ""], "`'"),
    (["-L", "-p", "sctp", "--state", "ESTABLISHED,CLOSED"], "ESTABLISHED,CLOSED"),
]


def _rc2_with_value(c, value):
    return (c.rc == 2 and c.stdout == "" and value in c.stderr)


@pytest.mark.oracle_differs
@pytest.mark.parametrize("args,value", REJECTED_BY_CTL,
                         ids=[_id(a) for a, _ in REJECTED_BY_CTL])
def test_ctl_rejects_bad_numbers(scratch_ns, args, value):
    c = run(scratch_ns, CTL, args, timeout=10)
    assert _rc2_with_value(c, value), (
        "ctl must reject %r with exit 2 and quote %r on stderr\n%s"
        % (args, value, c.show("ctl")))


def test_oracle_silently_accepts_bad_numbers(popns):
    """Documents why the cases above are deliberate differences."""
    o = run(popns, CONNTRACK, ["-L", "-p", "tcp", "--dport", "65616"])
    o80 = run(popns, CONNTRACK, ["-L", "-p", "tcp", "--dport", "80"])
    assert o.rc == 0 and o.stdout.count("\n") == o80.stdout.count("\n") > 0
    o = run(popns, CONNTRACK, ["-L", "-p", "sctp", "--state", "FOO"])
    assert o.rc < 0 or o.rc > 2, "conntrack no longer crashes: %r" % (o,)


# Number syntax that conntrack reads as a valid number but that a strict
# parser may reasonably refuse: ctl must either behave exactly like
# conntrack or reject it (exit 2, value quoted); it must never read a
# different number.
LENIENT_NUMBERS = [
    (["-L", "-p", "tcp", "--dport", " 80"], " 80"),
    (["-L", "-p", "udp", "--dport", "+53"], "+53"),
    (["-L", "-m", "+42"], "+42"),
    (["-L", "-m", " 42"], " 42"),
    (["-L", "-w", "+7"], "+7"),
    (["-L", "-w", " 7"], " 7"),
    (["-L", "-p", "icmp", "--icmp-id", "+77"], "+77"),
    (["-L", "-s", "10.10.0.1/ 8"], " 8"),
    (["-L", "-s", "10.10.0.1/+8"], "+8"),
    (["-L", "-s", "10.10.0.1 "], "10.10.0.1 "),
    (["-L", "-p", " 6"], " 6"),
]


@pytest.mark.parametrize("args,value", LENIENT_NUMBERS,
                         ids=[_id(a) for a, _ in LENIENT_NUMBERS])
def test_lenient_number_syntax(popns, args, value):
    c = run(popns, CTL, args)
    if not CTL_IS_ORACLE and _rc2_with_value(c, value):
        return      # a clean rejection is fine
    compare(popns, args)
