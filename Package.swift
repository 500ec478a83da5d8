// swift-tools-version:6.0
import Foundation
import PackageDescription

// How the ctl executable is linked: a system tool that starts about as fast
// as conntrack (issue 18; figures in the README's "Start-up" section).
// - -static-stdlib: no dependency on the toolchain's Swift runtime libraries.
// - libstdc++ and libgcc static too (the Swift runtime is their only user):
//   the static-stdlib link line names -lstdc++ itself, so scripts/link holds
//   a linker script "libstdc++.so" that stands for libstdc++.a, found first
//   because clang puts -L options given to it before its own directories.
// - --no-export-dynamic undoes static-stdlib's -export-dynamic: nothing
//   looks the executable's symbols up, and a 1.8 k-entry dynamic symbol
//   table cost the dynamic loader lookups at each start.
// - lld with -z pack-relative-relocs (DT_RELR, glibc >= 2.36): the 16,500
//   relative relocations of a position-independent executable in 3 KB
//   instead of 390 KB of .rela.dyn, which is read at each start.
// What stays dynamic: libc, libm and libmnl (Debian ships no libmnl.a; see
// the README). The Makefile builds with --disable-local-rpath: no
// $ORIGIN lookups for those three at start.
let linkDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/scripts/link"
let startupLinkerFlags = [
    "-static-stdlib",
    "-Xclang-linker", "-L\(linkDirectory)",
    "-Xclang-linker", "-static-libgcc",
    "-use-ld=lld",
    "-Xlinker", "--no-export-dynamic",
    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    // Full RELRO (Debian's hardening, lintian's hardening-no-bindnow): the
    // 386 symbol relocations are then all bound at start.
    "-Xlinker", "-z", "-Xlinker", "now",
]

let package = Package(
    name: "ctl",
    products: [
        .executable(name: "ctl", targets: ["ctl"]),
        .library(name: "CTCore", targets: ["CTCore"]),
    ],
    dependencies: [
        // `make docs`: the DocC catalog of CTCore (swift package generate-documentation).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // libmnl and the nfnetlink headers; C macros turned into static inline shims.
        .systemLibrary(
            name: "CMnl",
            pkgConfig: "libmnl",
            providers: [.apt(["libmnl-dev"])]
        ),
        // Netlink layer, conntrack model, decoder, formatters.
        .target(
            name: "CTCore",
            dependencies: ["CMnl"]
        ),
        // glibc's getopt_long for conntrack-identical argument parsing, its
        // globals (optind, optarg, opterr, optopt) behind accessor functions.
        .systemLibrary(name: "CGetopt"),
        // Argument parsing, the option checks, -R's line parser and the
        // commands: all of ctl but its entry point, a library so that the
        // argument fuzzer and the unit tests can call the parsers.
        .target(
            name: "CTCommands",
            dependencies: ["CTCore", "CGetopt"]
        ),
        // The command: --netns, then CTCommands.
        .executableTarget(
            name: "ctl",
            dependencies: ["CTCommands"],
            linkerSettings: [.unsafeFlags(startupLinkerFlags)]
        ),
        // Developer tool: writes each message of a table dump to a file,
        // for the decoder's byte fixtures (make fixtures).
        .executableTarget(
            name: "ctl-capture",
            dependencies: ["CTCore"]
        ),
        // Developer tool for make bench: the library's dumps and deletes as
        // a library user calls them (public API only).
        .executableTarget(
            name: "ctl-lib-bench",
            dependencies: ["CTCore"]
        ),
        // libFuzzer's driver entry point (declaration only).
        .systemLibrary(name: "CFuzzer"),
        // libFuzzer target for the decoder and formatters (make fuzz), and
        // without -DFUZZING a tool that replays inputs through the same path.
        .executableTarget(
            name: "ctl-fuzz-decoder",
            dependencies: ["CTCore", "CFuzzer"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // libFuzzer target for the argument and -R line parsers (make fuzz-args).
        .executableTarget(
            name: "ctl-fuzz-args",
            dependencies: ["CTCommands", "CFuzzer"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .testTarget(
            name: "CTCommandsTests",
            dependencies: ["CTCommands"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "CTCoreTests",
            dependencies: ["CTCore"],
            exclude: ["Fixtures"]
        ),
        // The library against the running kernel, in namespaces of its own,
        // with conntrack as the oracle (root; make library-tests). Built as
        // if in another package, so that it sees CTCore's public API only.
        .testTarget(
            name: "CTCoreKernelTests",
            dependencies: ["CTCore"],
            swiftSettings: [.unsafeFlags(["-package-name", "CTCoreKernelTestsClient"])]
        ),
    ]
)
