// swift-tools-version:6.0
import PackageDescription

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
    ]
)
