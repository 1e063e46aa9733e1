import Foundation
import Testing

/// The policy fuzzer's long form, briefly: `policy-fuzz run` isolates each batch in a
/// worker process and sends every third case through the built `sandbox` binary
/// (`check` and `plan`), as a user would. No crash, no hang, no unclear error.
@Suite struct PolicyFuzzCLITests {
    @Test func fuzzedPoliciesThroughTheCLI() throws {
        let fuzz = (Harness.binary as NSString).deletingLastPathComponent + "/policy-fuzz"
        let out = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Harness.run(fuzz, ["run", "--cases", "90", "--seed", "7", "--cli-every", "3", "--out", out,
                                       "--sandbox", Harness.binary], timeout: 300)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("30 through the CLI; crashes 0, hangs 0, findings 0"), "\(r.stdout)")
    }
}
