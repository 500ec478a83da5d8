#!/usr/bin/env python3
"""Checks that the recipes' code in the DocC catalog is the code that the
example package compiles: every ```swift block of the catalog that starts
with `import CTCore` and declares something public (a recipe; the short
examples of the overview declare nothing) must appear, whole and unchanged, in one of the
example's Swift files.

usage: check-doc-snippets.py CATALOG_DIR SOURCES_DIR
"""
import pathlib
import re
import sys


def main() -> int:
    catalog, sources = map(pathlib.Path, sys.argv[1:3])
    compiled = {p: p.read_text() for p in sorted(sources.rglob("*.swift"))}
    checked, failures = 0, []
    for article in sorted(catalog.rglob("*.md")):
        for block in re.findall(r"^```swift\n(.*?)^```", article.read_text(), re.M | re.S):
            if not block.startswith("import CTCore") or "\npublic " not in block:
                continue
            checked += 1
            if not any(block in text for text in compiled.values()):
                failures.append(f"{article}: a recipe block ({block.splitlines()[1:2]}...) is in no file of {sources}")
    for failure in failures:
        print(failure, file=sys.stderr)
    if checked == 0:
        print(f"no recipe blocks found in {catalog}", file=sys.stderr)
        return 1
    print(f"{checked} recipe blocks of {catalog} match {sources}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
