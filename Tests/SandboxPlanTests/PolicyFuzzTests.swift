import Foundation
import PolicyFuzz
import SandboxPolicy
import Testing

/// The short form of the policy fuzzer (Docs/reliability.md): generated malformed and
/// hostile policies go through load and plan compilation in-process; each must give a
/// valid Policy (and a plan or a PlanError) or a clean PolicyError naming the file and
/// the key or line. A fixed set of seeds runs in every suite; SANDBOX_FUZZ_SECONDS=N
/// runs fresh seeds for N seconds instead (SANDBOX_FUZZ_SEED picks the first). The
/// long form, with crash isolation and the CLI, is `Scripts/fuzz-policy.sh`.
@Suite struct PolicyFuzzTests {
    static let data = DataDirectory(root: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path)

    /// A tmpfs when there is one: each case is written to disk and removed again.
    static func workDir() -> String {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        return base + "sandbox-policy-fuzz-\(UUID().uuidString.prefix(8))"
    }

    @Test func generatedPoliciesLoadOrAreRefusedCleanly() throws {
        let generator = PolicyGenerator(shipped: FuzzDriver.shippedPolicies(Self.data))
        let work = Self.workDir()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let driver = FuzzDriver(workDir: work, data: Self.data)
        let watchdog = Watchdog(boundSeconds: 30)
        defer { watchdog.stop() }

        let env = ProcessInfo.processInfo.environment
        let seconds = env["SANDBOX_FUZZ_SECONDS"].flatMap(Double.init)
        var seed = env["SANDBOX_FUZZ_SEED"].flatMap(UInt64.init) ?? (seconds == nil ? 1 : UInt64(Date().timeIntervalSince1970))
        let casesPerSeed = seconds == nil ? 120 : 10_000
        let lastSeed = seconds == nil ? seed + 2 : .max
        if seconds != nil { print("policy fuzz: first seed \(seed)") }
        let start = Date()
        var inputs = 0
        var results: [FuzzDriver.Outcome.Result: Int] = [:]
        outer: while seed <= lastSeed {
            for i in 0..<casesPerSeed {
                if let seconds, Date().timeIntervalSince(start) > seconds { break outer }
                let c = generator.generate(seed: seed, index: i)
                watchdog.started(seed: seed, index: i)
                try driver.write(c)
                let outcome = driver.run(c)
                watchdog.finished()
                inputs += 1
                results[outcome.result, default: 0] += 1
                #expect(outcome.findings.isEmpty,
                        "seed \(seed) case \(i) (\(c.strategy)); replay: policy-fuzz replay --seed \(seed) --case \(i)\n\(outcome.findings.joined(separator: "\n"))")
            }
            seed += 1
        }
        print("policy fuzz: \(inputs) inputs in \(Int(Date().timeIntervalSince(start))) s: \(results)")
        // The generator reaches every outcome, so the invariants are exercised on each.
        #expect((results[.planned] ?? 0) > 0 && (results[.refused] ?? 0) > 0)
    }

    @Test func sameSeedAndCaseGiveTheSameInput() {
        let generator = PolicyGenerator(shipped: FuzzDriver.shippedPolicies(Self.data))
        for i in [0, 7, 99] {
            let a = generator.generate(seed: 42, index: i), b = generator.generate(seed: 42, index: i)
            #expect(a.strategy == b.strategy)
            #expect(a.files.map(\.path) == b.files.map(\.path))
            #expect(a.files.map { "\($0.content)" } == b.files.map { "\($0.content)" })
        }
    }

    @Test func everyStrategyIsReached() {
        let generator = PolicyGenerator(shipped: FuzzDriver.shippedPolicies(Self.data))
        let seen = Set((0..<300).map { generator.generate(seed: 1, index: $0).strategy.split(separator: " ")[0] })
        #expect(seen == Set(PolicyGenerator.strategies.map { Substring($0) }))
    }
}
