// swift-tools-version:6.0
// A tour of CTCore's public API, as another package uses it: it depends on
// the ctl package by path and imports nothing but CTCore.
import PackageDescription

let package = Package(
    name: "ConntrackTour",
    dependencies: [
        .package(name: "ctl", path: "../.."),
    ],
    targets: [
        // "CTCore" by name: the product of the package at ../.., whatever
        // the folder of the clone is called (its identity).
        // The recipes of CTCore's documentation, compiled here so that the
        // code the documentation shows builds against the library.
        .target(
            name: "Recipes",
            dependencies: [.product(name: "CTCore", package: "ctl")]
        ),
        // The tour: run it as root (make examples).
        .executableTarget(
            name: "ConntrackTour",
            dependencies: ["Recipes", .product(name: "CTCore", package: "ctl")]
        ),
    ]
)
