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

    /// Corelibs Foundation, FoundationInternationalization and ICU (a 34 MB data table
    /// and 12 000 symbols in the static release build, paid for by every start in page
    /// faults and relocations) stay out of the binary: the sources import
    /// FoundationEssentials only. A static link takes an archive member only for a
    /// symbol something refers to, so no reference here (the debug build CI tests, which
    /// still lists libFoundation.so because TOMLKit imports `struct Foundation.Data`)
    /// means none of them in the release build; a release binary is checked for ICU's
    /// data table itself, which a strip keeps.
    @Test func foundationInternationalizationAndICUAreNotLinked() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Harness.binary))
        #expect(bytes.firstRange(of: Data("icudt".utf8)) == nil, "ICU's data table is in \(Harness.binary)")

        let nm = try Harness.run("/usr/bin/env", ["nm", "--format=posix", Harness.binary])
        let symbols = nm.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        let stripped = nm.stderr.contains("no symbols")
        #expect(nm.status == 0 && !symbols.isEmpty || stripped, "nm: \(nm.stderr)")
        // Swift's mangling names a module by its length and name: `10Foundation` is
        // corelibs Foundation (`20FoundationEssentials` is not matched).
        let offending = symbols.filter {
            $0.contains("FoundationInternationalization") || $0.contains("_FoundationICU") || $0.hasPrefix("icu")
                || $0.firstRange(of: #/(^|[^0-9])10Foundation/#) != nil
        }
        #expect(offending.isEmpty, """
            \(offending.count) symbols of corelibs Foundation or ICU in \(Harness.binary), e.g. \(offending.prefix(5)).
            A file imports Foundation, or calls a Foundation member that TOMLKit's import makes visible \
            (use the standard library's or FoundationEssentials' own); `swift demangle` names them.
            """)
    }
}
