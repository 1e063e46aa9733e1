import Foundation
import Testing

/// What every run pays before it does anything (issue 16, cold start): the libraries
/// the dynamic loader maps and relocates. libnftables (with the libraries behind it)
/// is opened only by the egress runs that use it, and SHA-256 is our own, so neither
/// it nor libcrypto is loaded by `sandbox` itself.
@Suite struct StartupTests {
    @Test func onlyTheLibrariesEveryRunNeedsAreLoaded() throws {
        // ld.so lists what it would load and exits (what ldd does), without running us.
        let out = try Harness.run(Harness.binary, [], env: ["LD_TRACE_LOADED_OBJECTS": "1"])
        #expect(out.stdout.contains("libc.so"), "no library list: \(out.stdout) \(out.stderr)")
        for lib in ["libnftables", "libnftnl", "libjansson", "libgmp", "libxtables", "libmnl", "libcrypto"] {
            #expect(!out.stdout.contains(lib), "\(lib) is loaded at start-up: \(out.stdout)")
        }
    }
}
