// swift-tools-version:6.0
import PackageDescription

// The release build (README, Benchmarks/) also passes --disable-local-rpath: without
// it SwiftPM gives the executable a RUNPATH of $ORIGIN, where the loader looks for
// every library first (Docs/architecture.md, start-up path).
//
// SANDBOX_STATIC_CXX=1, set beside --static-swift-stdlib (README, Benchmarks/): the
// `sandbox` binary links libstdc++ and libgcc's unwinder from their static archives
// instead of loading them at every start. Linking/static-runtime holds linker scripts
// that `-lstdc++` and `-lgcc_s` find first (the driver names both explicitly, so
// -static-libstdc++ cannot): the loader's start-up 1.7M -> 0.4M cycles, a refused
// start 4.9 -> 3.2 ms (Docs/benchmarks.md, session 33). Opt-in, and release only,
// because a binary on the shared Swift runtime (any debug build, a release build
// without --static-swift-stdlib) loads libswiftCore.so and with it the shared
// libstdc++: two copies in one process broke toml++'s number parsing. Such a binary
// refuses to start (main.swift, `SANDBOX_STATIC_CXX`).
let staticCxx = Context.environment["SANDBOX_STATIC_CXX"] == "1"
let staticCxxLinking: [LinkerSetting] = staticCxx
    ? [.unsafeFlags(["-L" + Context.packageDirectory + "/Linking/static-runtime"], .when(platforms: [.linux], configuration: .release))]
    : []

let package = Package(
    name: "sandbox",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sandbox", targets: ["sandbox"]),
        // What a harness embeds: the same pipeline the CLI drives.
        .library(name: "SandboxKit", targets: ["SandboxKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        // System libraries, found by pkg-config (Debian -dev packages).
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // Declarations only: libnftables is opened with dlopen by the egress runs that
        // need it (SandboxKernel/Network/Nftables.swift), so it is not linked.
        .systemLibrary(name: "CNftables", providers: [.apt(["libnftables-dev"])]),

        // C that Swift cannot express: raw syscalls, macros, and the child runner that
        // executes between clone3 and execve (async-signal-safe only).
        .target(name: "CSandbox", cSettings: [.unsafeFlags(["-ffunction-sections"], .when(configuration: .release))]),
        // SHA-256 and HMAC-SHA256 in C (SHA extensions when the CPU has them): every
        // digest, without loading libcrypto on each run's start-up.
        .target(name: "CDigest", cSettings: [.unsafeFlags(["-ffunction-sections"], .when(configuration: .release))]),

        // The words policy, plan and kernel layer share (network mode, seccomp actions,
        // Landlock rights, socket families, the run-id rule…): a leaf, written once.
        .target(name: "SandboxVocabulary"),
        // Pure layers: no kernel calls, unprivileged tests.
        // The shipped Policies/ and Profiles/seccomp/ are compiled in (EmbedShippedFiles):
        // the binary runs them wherever it is copied, and the copies are made from the
        // files at build time, so they cannot drift from the repository.
        .target(name: "SandboxPolicy", dependencies: ["SandboxVocabulary", .product(name: "TOMLKit", package: "TOMLKit"), "CDigest"],
                plugins: ["EmbedShippedFiles"]),
        .target(name: "SandboxPlan", dependencies: ["SandboxVocabulary", "SandboxPolicy"]),

        // The only Swift module that talks to the kernel.
        // Capabilities are dropped in the child with raw prctl/capset (libcap allocates,
        // which is not allowed between clone and execve), so libcap is not linked.
        .target(name: "SandboxKernel", dependencies: ["SandboxVocabulary", "CSandbox", "CSeccomp", "CNftables", "CDigest"]),
        // The tamper-evident audit log: records, the hash chain, verification.
        .target(name: "SandboxAudit", dependencies: ["SandboxPlan", "SandboxKernel", "CDigest"]),
        .target(name: "SandboxExecutor", dependencies: ["SandboxPlan", "SandboxKernel", "SandboxAudit"]),

        // One module for a harness: the pipeline re-exported, and exec's steps around
        // the Executor (Docs/library.md).
        .target(name: "SandboxKit", dependencies: ["SandboxVocabulary", "SandboxPolicy", "SandboxPlan", "SandboxKernel", "SandboxAudit", "SandboxExecutor"]),
        // `sandbox export`: a plan as an OCI bundle or Kubernetes objects (Docs/scale-out.md).
        .target(name: "SandboxExport", dependencies: ["SandboxVocabulary", "SandboxPlan"]),
        // `sandbox serve` and the `exec --server` client (Docs/serve.md).
        .target(name: "SandboxServe", dependencies: ["SandboxKit", "CSandbox"]),

        .executableTarget(name: "sandbox", dependencies: [
            "SandboxKit", "SandboxServe", "SandboxExport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: staticCxx ? [.define("SANDBOX_STATIC_CXX", .when(configuration: .release))] : [],
        linkerSettings: [
            // SwiftPM links an executable with --export-dynamic: all ~9 800 global
            // symbols in .dynsym. Nothing looks them up (libnftables is dlopen'ed and
            // never calls back), and every start paid for them (a 236 KiB table paged
            // in, dladdr's scan of it): process start 3.7 -> 3.1 ms (Docs/benchmarks.md).
            .unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(platforms: [.linux])),
            // The functions a cold run calls, laid out together in the order they are
            // first called (Linking/order-text.sh; our objects are built with one
            // section per function for it, and Scripts/build-release.sh builds the
            // dependencies' so too): the text resident in a cold `exec` 7.6 -> 5.6 MiB,
            // its peak RSS 13.0 -> 11.6 MiB (session 35), with the dependencies' laid
            // out too 10.0 MiB (Docs/benchmarks.md, session 38).
            // Gold's option (Swift's default linker on Linux).
            .unsafeFlags(["-Xlinker", "--section-ordering-file=" + Context.packageDirectory + "/Linking/text-order.txt"], .when(platforms: [.linux], configuration: .release)),
        ] + staticCxxLinking, plugins: ["RecordRevision"]),

        // Build-time only (nothing here ships): the generator of SandboxPolicy's
        // ShippedFiles, and the git revision `sandbox --version` reports.
        .executableTarget(name: "embed-shipped-files", path: "Plugins/EmbedShippedFilesTool"),
        .plugin(name: "EmbedShippedFiles", capability: .buildTool(), dependencies: ["embed-shipped-files"]),
        .plugin(name: "RecordRevision", capability: .buildTool()),

        .testTarget(name: "SandboxPolicyTests", dependencies: ["SandboxPolicy", "CDigest"], exclude: ["Fixtures"]),
        .testTarget(name: "SandboxPlanTests", dependencies: ["SandboxPlan", "SandboxPolicy", "SandboxExport", "PolicyFuzz"]),
        .testTarget(name: "SandboxAuditTests", dependencies: ["SandboxAudit", "SandboxPlan", "SandboxPolicy"]),
        // The policy fuzzer (Docs/reliability.md): the generator and in-process driver, and
        // `policy-fuzz`, its long form; outside Sources/ so none of it ships.
        .target(name: "PolicyFuzz", dependencies: ["SandboxPolicy", "SandboxPlan"], path: "Tests/Support/PolicyFuzz"),
        .executableTarget(name: "policy-fuzz", dependencies: ["PolicyFuzz", "SandboxPolicy"], path: "Tests/Support/PolicyFuzzRunner"),
        // Fork-and-probe helpers for the kernel tests; outside Sources/ so none of it ships.
        .target(name: "CSandboxTestSupport", dependencies: ["CSandbox"], path: "Tests/Support/CSandboxTestSupport"),
        .testTarget(name: "SandboxKernelTests", dependencies: ["SandboxVocabulary", "SandboxKernel", "CSandboxTestSupport"]),
        // What the executor decides without the kernel (errors, exit status, undo
        // order, fd ownership): no root needed.
        .testTarget(name: "SandboxExecutorTests", dependencies: ["SandboxExecutor", "SandboxKernel", "SandboxPlan", "SandboxPolicy"]),
        // Runs the built `sandbox` binary against the real kernel; needs root for part.
        // ConcurrencyTests also drives the library in-process, as a harness would.
        .testTarget(name: "IntegrationTests", dependencies: [
            "sandbox", "policy-fuzz", "SandboxPolicy", "SandboxPlan", "SandboxKernel", "SandboxExecutor", "SandboxAudit",
            "SandboxKit", "CSandbox", "SandboxServe", "CSandboxTestSupport",
        ]),
    ],
    swiftLanguageModes: [.v5]
)

// A file sees only the members of the modules it imports itself (Swift 6's
// MemberImportVisibility). TOMLKit imports corelibs Foundation (`struct
// Foundation.Data`), and without this its String methods (`contains`,
// `trimmingCharacters`, `replacingOccurrences`…) would be picked over the standard
// library's in every module above SandboxPolicy, linking Foundation,
// FoundationInternationalization and ICU into the binary again (StartupTests).
//
// Concrete generic types (`[String: PathTemplate]`, `Set<SocketFamily>`…) reach their
// metadata through accessor functions, not by mangled name: by name, the first use of
// each type in a process demangles it and checks its generic requirements, which
// scans every protocol conformance in the binary (~5 000) for each one not yet cached.
// A cold `exec` did that 173 times (35 conformance lookups); with accessors 8 times
// (12). The price is a little code (~100 KB of text). Docs/benchmarks.md, session 33.
for target in package.targets where [.regular, .executable].contains(target.type) {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .enableUpcomingFeature("MemberImportVisibility"),
        .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
        // One section per function, so that Linking/text-order.txt can place them.
        .unsafeFlags(["-Xfrontend", "-function-sections"], .when(configuration: .release)),
    ]
}
