#!/usr/bin/env python3
"""Inputs for ctl-fuzz-decoder (make fuzz).

  fuzz-corpus.py seeds DIR        seed corpus: every kernel-captured fixture
                                  as a payload, and wrapped in netlink headers
  fuzz-corpus.py regressions DIR  the hand-made nasty inputs of the
                                  regression corpus (committed; rerun only to
                                  regenerate them)
"""
import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "CTCoreTests", "Fixtures")
NESTED = 0x8000


def nla(kind, value, length=None):
    """One attribute, padded to 4 bytes; `length` overrides nla_len."""
    n = 4 + len(value) if length is None else length
    raw = struct.pack("=HH", n, kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def nest(kind, *children):
    return nla(kind | NESTED, b"".join(children))


def nlmsg(kind, payload, flags=0, length=None):
    n = 16 + len(payload) if length is None else length
    raw = struct.pack("=IHHII", n, kind, flags, 1, 0) + payload
    return raw + b"\0" * (-len(raw) % 4)


NFGEN_INET = bytes([2, 0, 0, 0])
NFGEN_INET6 = bytes([10, 0, 0, 0])
CT_NEW, CT_DELETE, CT_STATS_CPU, CT_STATS = 0x0100, 0x0102, 0x0104, 0x0105
EXP_NEW = 0x0200
NLMSG_DONE, NLMSG_ERROR = 3, 2


def tuple_v4(kind, proto=6, sport=1234, dport=80):
    return nest(kind,
                nest(1, nla(1, bytes([10, 0, 0, 1])), nla(2, bytes([10, 0, 0, 2]))),
                nest(2, nla(1, bytes([proto])), nla(2, struct.pack(">H", sport)), nla(3, struct.pack(">H", dport))))


def flow(*extra, family=NFGEN_INET):
    return family + tuple_v4(1) + tuple_v4(2) + b"".join(extra)


def regressions():
    u32 = lambda v: struct.pack(">I", v)
    u64 = lambda v: struct.pack(">Q", v)
    return {
        "empty": b"",
        "nfgenmsg-only": NFGEN_INET,
        "short-nfgenmsg": b"\x02\x00",
        "nla-len-0": NFGEN_INET + struct.pack("=HH", 0, 7) + u32(5),
        "nla-len-3": NFGEN_INET + struct.pack("=HH", 3, 7) + u32(5),
        "nla-len-huge": NFGEN_INET + struct.pack("=HH", 0xFFFF, 1 | NESTED) + b"\0" * 8,
        "zero-length-attrs": NFGEN_INET + b"".join(nla(k, b"") for k in range(1, 27))
        + b"".join(nla(k | NESTED, b"") for k in range(1, 27)),
        "nested-past-end": NFGEN_INET + nla(1 | NESTED, struct.pack("=HH", 200, 1 | NESTED) + b"\0" * 4),
        "nested-inner-past-outer": NFGEN_INET + nla(1 | NESTED, nla(1 | NESTED, nla(1, bytes(4)) * 3), length=12)
        + nla(7, u32(1)),
        "deep-nesting": NFGEN_INET + (lambda d: [d := nest(1, d) for _ in range(200)][-1])(b""),
        "extreme-values": flow(nla(7, u32(0xFFFFFFFF)), nla(3, u32(0xFFFFFFFF)), nla(8, u32(0xFFFFFFFF)),
                               nla(12, u32(0xFFFFFFFF)), nla(11, u32(0xFFFFFFFF)),
                               nest(9, nla(1, u64(2**64 - 1)), nla(2, u64(2**64 - 1))),
                               nest(20, nla(1, u64(2**64 - 1)), nla(2, u64(1))),
                               nla(18, struct.pack(">H", 0xFFFF))),
        "timestamp-stop-before-start": flow(nest(20, nla(1, u64(2**63)), nla(2, u64(0)))),
        "bad-states": flow(nest(4, nest(1, nla(1, b"\xff")))) + flow(nest(4, nest(3, nla(1, b"\xff"))))[4:],
        "strings": flow(nest(5, nla(1, b"<&\"'\\\n\x01\xff\xfe")), nest(19, nla(1, b"a" * 300)),
                        nest(5, nla(1, b"no-terminator"))),
        "labels-long": flow(nla(22, b"\xff" * 1024), nla(23, b"\xff" * 3)),
        "wrong-sizes": flow(nla(7, b"\1\2"), nla(3, u64(1))),
        "ipv6-in-ipv4": flow(family=NFGEN_INET) + nest(1, nest(1, nla(3, bytes(16)), nla(4, bytes(3)))),
        "unknown-family": flow(family=bytes([99, 0, 0, 0])),
        "netlink-len-huge": nlmsg(CT_NEW, flow(), length=0xFFFFFFFF),
        "netlink-len-short": nlmsg(CT_NEW, b"", length=15),
        "netlink-len-unaligned": nlmsg(CT_NEW, flow(), length=16 + len(flow()) - 1) + nlmsg(NLMSG_DONE, bytes(4)),
        "netlink-empty-payloads": nlmsg(CT_NEW, b"") + nlmsg(EXP_NEW, b"") + nlmsg(CT_STATS_CPU, b"")
        + nlmsg(CT_STATS, b"") + nlmsg(NLMSG_ERROR, b""),
        "netlink-stats": nlmsg(CT_STATS_CPU, NFGEN_INET[:2] + b"\xff\xff" + b"".join(nla(k, u32(0xFFFFFFFF)) for k in range(0, 20)))
        + nlmsg(CT_STATS, NFGEN_INET + nla(1, u32(0xFFFFFFFF)) + nla(2, u32(7))),
    }


def seeds(out):
    files = sorted(glob.glob(os.path.join(FIXTURES, "*.bin")))
    expects = sorted(glob.glob(os.path.join(FIXTURES, "expect", "*.bin")))
    chunk = b""
    for path in files + expects:
        data = open(path, "rb").read()
        name = os.path.basename(path)[:-4]
        if path in expects:
            name = "expect-" + name
        kind = EXP_NEW if path in expects else CT_NEW
        message = nlmsg(kind, data, flags=0x0400 | 0x0200)
        chunk += message
        for suffix, raw in (("payload", data), ("message", message)):
            open(os.path.join(out, f"{name}.{suffix}"), "wb").write(raw)
    open(os.path.join(out, "all.chunk"), "wb").write(chunk + nlmsg(NLMSG_DONE, bytes(4)))
    return len(files + expects)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("seeds", "regressions"):
        sys.exit(__doc__)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if sys.argv[1] == "seeds":
        print(f"{seeds(out)} fixtures -> {out}")
    else:
        for name, raw in regressions().items():
            open(os.path.join(out, name + ".bin"), "wb").write(raw)
        print(f"{len(regressions())} inputs -> {out}")


if __name__ == "__main__":
    main()
