// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ctl",
    products: [
        .executable(name: "ctl", targets: ["ctl"]),
        .library(name: "CTCore", targets: ["CTCore"]),
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
        // glibc's getopt_long for conntrack-identical argument parsing.
        .systemLibrary(name: "CGetopt"),
        // Argument parsing, the option checks, -R's line parser and the
        // commands: all of ctl but its entry point, a library so that the
        // argument fuzzer and the unit tests can call the parsers.
        .target(
            name: "CTCommands",
            dependencies: ["CTCore", "CGetopt"],
            // getopt_long's globals (optind, optarg, opterr) are plain C
            // variables, which Swift 6 mode refuses to touch.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The command: --netns, then CTCommands.
        .executableTarget(
            name: "ctl",
            dependencies: ["CTCommands"],
            // A system tool: no dependency on the toolchain's runtime
            // libraries, and a faster start.
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        ),
        // Developer tool: writes each message of a table dump to a file,
        // for the decoder's byte fixtures (make fixtures).
        .executableTarget(
            name: "ctl-capture",
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
