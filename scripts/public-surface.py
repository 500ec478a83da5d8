#!/usr/bin/env python3
"""Counts a module's public symbols by kind from its symbol graph.

usage: public-surface.py SYMBOLS.json [--list]
"""
import collections
import json
import sys


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


if __name__ == "__main__":
    main()
