// swift-tools-version:6.2
// Stratus: a declarative cloud controller (EC2 API, S3, libvirt, AoE, VLANs, LDAP).

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "stratus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stratus", targets: ["stratus"]),
        .library(name: "StratusModel", targets: ["StratusModel"]),
        .library(name: "StratusStore", targets: ["StratusStore"]),
        .library(name: "StratusControl", targets: ["StratusControl"]),
        .library(name: "StratusCompute", targets: ["StratusCompute"]),
        .library(name: "StratusAPI", targets: ["StratusAPI"]),
        .library(name: "StratusIdentity", targets: ["StratusIdentity"]),
        .library(name: "StratusEC2", targets: ["StratusEC2"]),
        .library(name: "StratusAccess", targets: ["StratusAccess"]),
        .library(name: "StratusServer", targets: ["StratusServer"]),
        .library(name: "StratusNode", targets: ["StratusNode"]),
        .library(name: "StratusAgent", targets: ["StratusAgent"]),
        .library(name: "StratusStorage", targets: ["StratusStorage"]),
        .library(name: "StratusTelemetry", targets: ["StratusTelemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "StratusModel",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusTelemetry",
            dependencies: [
                "StratusModel",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusStore",
            dependencies: [
                "StratusModel",
                "StratusTelemetry",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap2-dev"])]),
        .target(
            name: "StratusIdentity",
            dependencies: [
                "CLDAP",
                "StratusModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),
        .target(
            name: "StratusCompute",
            dependencies: [
                "CLibvirt",
                "StratusModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .target(
            name: "StratusMessaging",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusAgent",
            dependencies: [
                "StratusCompute",
                "StratusMessaging",
                "StratusModel",
                "StratusNode",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusNode",
            dependencies: [
                "StratusCompute",
                "StratusModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusControl",
            dependencies: [
                "StratusTelemetry",
                "StratusModel",
                "StratusStore",
                "StratusCompute",
                "StratusIdentity",
                "StratusNode",
                "StratusNetwork",
                "StratusStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusAccess",
            dependencies: [
                "StratusTelemetry",
                "StratusModel",
                "StratusStore",
                "StratusIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusAPI",
            dependencies: [
                "StratusTelemetry",
                "StratusAccess",
                "StratusModel",
                "StratusStore",
                "StratusIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusEC2",
            dependencies: [
                "StratusTelemetry",
                "StratusModel",
                "StratusStore",
                "StratusIdentity",
                "StratusAccess",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusNetwork",
            dependencies: [
                "StratusCompute",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "CStratusIO"),
        .target(
            name: "StratusStorage",
            dependencies: [
                "CStratusIO",
                "StratusCompute",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusObjectStore",
            dependencies: [
                "StratusTelemetry",
                "CStratusIO",
                "StratusModel",
                "StratusStore",
                "StratusIdentity",
                "StratusAccess",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StratusServer",
            dependencies: [
                "StratusTelemetry",
                "StratusAccess",
                "StratusAgent",
                "StratusAPI",
                "StratusCompute",
                "StratusControl",
                "StratusEC2",
                "StratusIdentity",
                "StratusMessaging",
                "StratusModel",
                "StratusNetwork",
                "StratusNode",
                "StratusObjectStore",
                "StratusStorage",
                "StratusStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "stratus",
            dependencies: [
                "StratusTelemetry",
                "StratusAccess",
                "StratusAgent",
                "StratusAPI",
                "StratusCompute",
                "StratusIdentity",
                "StratusMessaging",
                "StratusModel",
                "StratusNode",
                "StratusObjectStore",
                "StratusServer",
                "StratusStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "stratus-bench",
            dependencies: [
                "CLibvirt", "StratusCompute", "StratusControl", "StratusMessaging", "StratusModel", "StratusNetwork", "StratusNode", "StratusStorage", "StratusStore", "StratusIdentity", "StratusTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "StratusModelTests", dependencies: ["StratusModel", "StratusTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "StratusStoreTests",
            dependencies: ["StratusStore", "StratusModel", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(name: "StratusTestSupport", path: "Tests/StratusTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "StratusIdentityTests",
            dependencies: ["StratusIdentity", "StratusModel", "StratusTestSupport"],
            exclude: ["botocore_sign.py"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StratusEC2Tests",
            dependencies: [
                "StratusEC2", "StratusIdentity", "StratusStore", "StratusModel", "StratusTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "StratusComputeTests", dependencies: ["StratusCompute", "StratusModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "StratusControlTests",
            dependencies: [
                "StratusControl", "StratusStore", "StratusModel", "StratusCompute", "StratusIdentity", "StratusNode", "StratusStorage", "StratusTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StratusAPITests",
            dependencies: [
                "StratusAPI", "StratusAccess", "StratusTelemetry", "StratusIdentity", "StratusModel", "StratusStore", "StratusTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "StratusMessagingTests", dependencies: ["StratusMessaging", "StratusTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "StratusStorageTests", dependencies: ["StratusStorage", "StratusCompute", "StratusTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "StratusNetworkTests", dependencies: ["StratusNetwork", "StratusCompute", "StratusTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "StratusNodeTests", dependencies: ["StratusNode", "StratusCompute", "StratusModel", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        .testTarget(
            name: "StratusServerTests",
            dependencies: [
                "StratusServer", "StratusAccess", "StratusStore", "StratusModel", "StratusIdentity", "StratusNode", "StratusTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StratusCLITests",
            dependencies: [
                "StratusAgent", "StratusCompute", "StratusMessaging", "StratusStorage", "StratusStore", "StratusModel", "StratusTestSupport", "stratus",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
