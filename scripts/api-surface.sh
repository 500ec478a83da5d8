#!/usr/bin/env bash
# CTCore's public surface: extracts the module's symbol graph from the
# debug build (public symbols only) and counts them by kind; fails when a
# symbol of the library's internals is public (scripts/public-surface.py).
#   scripts/api-surface.sh [--list]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
swift build --product ctl-lib-bench >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bin=$(swift build --show-bin-path)
swift-symbolgraph-extract -module-name CTCore -I "$bin/Modules" \
    -Xcc -fmodule-map-file=Sources/CMnl/module.modulemap \
    -target "$(uname -m)-unknown-linux-gnu" -minimum-access-level public -output-dir "$out"
python3 scripts/public-surface.py "$out/CTCore.symbols.json" --check "$@"
