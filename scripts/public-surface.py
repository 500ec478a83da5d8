#!/usr/bin/env python3
"""Counts a module's public symbols by kind from its symbol graph.

usage: public-surface.py SYMBOLS.json [--list] [--check]

--check fails (exit 1) when a public symbol belongs to the library's
internals: netlink plumbing, attribute constants, the decoder, the
formatters and output buffer, fuzz entry points.
"""
import collections
import json
import sys

# Names of internal types that must never be public.
INTERNAL = {
    "NetlinkSocket", "NetlinkTransport", "MnlTransport", "NetlinkRequest", "NetlinkMessage", "NetlinkFlags",
    "RequestAttribute", "ByteView", "CTA", "CTAExpect", "CTMessage", "ExpectMessage", "Decoder", "Encode",
    "EventSocket", "EventListener", "ExpectationListener", "EventFilter", "FilterInstruction", "EventGroups",
    "CTSession", "CreateStream", "BatchPipeline", "ReadAhead", "SocketSource", "NamespaceGate", "StreamChannel",
    "ChannelReader", "OutputBuffer", "OutputOptions", "TextFormatter", "XMLFormatter", "JSONFormatter",
    "SaveFormatter", "ExpectFormatter", "Names", "LabelMap", "FuzzEntry", "IPProto", "EntryChange", "CPUStats",
    "MalformedMessage", "Selector", "KernelFilterSupport", "RequestOutcome",
}


def main():
    path = sys.argv[1]
    with open(path) as f:
        graph = json.load(f)
    symbols = [s for s in graph["symbols"] if s.get("accessLevel") in ("public", "open")]
    kinds = collections.Counter(s["kind"]["displayName"] for s in symbols)
    for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:5d}  {kind}")
    print(f"{len(symbols):5d}  total")
    if "--list" in sys.argv:
        for s in sorted(".".join(s["pathComponents"]) for s in symbols):
            print(s)
    if "--check" in sys.argv:
        leaks = sorted({".".join(s["pathComponents"]) for s in symbols if s["pathComponents"][0] in INTERNAL})
        for leak in leaks:
            print(f"internal symbol is public: {leak}")
        if leaks:
            sys.exit(1)
        print("public surface: no internal symbols")


if __name__ == "__main__":
    main()
