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

    /// A process's descriptors: number and what each names.
    static func descriptors(of pid: Int32) -> [(number: String, target: String)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { n in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(n)")).map { (n, $0) }
        }
    }

    /// The supervisor maps its code a page at a time through a userfaultfd it holds
    /// for its whole life (sandbox_text_paging.h). A userfaultfd acts on the memory of
    /// the process that made it, whoever holds it, so the command must never get it:
    /// the supervisor holds exactly one (close-on-exec), no process below it holds
    /// one, and the command's descriptors are its three
    /// and the one its own `ls` opens (the control: what the listing sees of a
    /// descriptor the command did not open itself is checked through /dev/fd/3 of a
    /// shell that opened it).
    @Test func theSupervisorsUserfaultfdNeverReachesTheCommand() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Harness.basePolicy(in: ws, name: "paging")
        let script = "ls -l /proc/self/fd/; exec 3</dev/null; echo control; ls -l /proc/$$/fd/; echo ready; sleep 1"
        let run = try EgressScopeTests.Background(Harness.binary, ["exec", "--policy", policy, "--", "sh", "-c", script], cwd: ws)
        defer { run.stop() }  // only if an expectation below threw first
        var lines: [String] = []
        var data = Data()
        let deadline = Date().addingTimeInterval(20)
        while !lines.contains("ready") && Date() < deadline {
            let chunk = run.output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data += chunk
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        try #require(lines.contains("ready"), "the command did not start: \(lines)")

        let supervisor = run.process.processIdentifier
        let fds = Self.descriptors(of: supervisor)
        let paging = fds.filter { $0.target == "anon_inode:[userfaultfd]" }
        #expect(paging.count == 1, "the supervisor holds no userfaultfd: \(fds)")
        // Close-on-exec (O_CLOEXEC, 02000000 in fdinfo's octal flags).
        for fd in paging {
            let info = (try? String(contentsOfFile: "/proc/\(supervisor)/fdinfo/\(fd.number)", encoding: .utf8)) ?? ""
            let flags = info.split(separator: "\n").first { $0.hasPrefix("flags:") }.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) } ?? 0
            #expect(flags & 0o2000000 != 0, "the supervisor's userfaultfd is not close-on-exec: \(info)")
        }
        // Nor does any process below the supervisor: the sandbox's init closes every
        // descriptor it does not keep (close-on-exec alone would not clear it there,
        // as it does not exec), and the command's shell and sleep after it.
        var below = SpawnerTests.children(of: supervisor).map(\.pid)
        var seen: [Int32] = []
        while let pid = below.popLast() {
            seen.append(pid)
            below += SpawnerTests.children(of: pid).map(\.pid)
            let theirs = Self.descriptors(of: pid)
            #expect(!theirs.contains { $0.target.contains("userfaultfd") }, "process \(pid) below the supervisor holds a userfaultfd: \(theirs)")
        }
        #expect(seen.count >= 2, "no init and command found below the supervisor: \(seen)")

        let split = lines.firstIndex(of: "control") ?? lines.count
        let command = lines[..<split].filter { $0.contains(" -> ") }
        #expect(!command.isEmpty, "no descriptor listed: \(lines)")
        #expect(!command.contains { $0.contains("userfaultfd") }, "the command holds a userfaultfd: \(command)")
        let numbers = Set(command.compactMap { $0.split(separator: " ").dropLast(2).last.map(String.init) })
        #expect(numbers.isSubset(of: ["0", "1", "2", "3"]), "the command holds descriptors it did not open: \(command)")
        // Control: the listing shows a descriptor the shell opened (fd 3 on /dev/null).
        let control = lines[split...].filter { $0.contains(" -> ") }
        #expect(control.contains { $0.contains(" 3 -> /dev/null") }, "control: the listing missed fd 3: \(Array(control))")
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0, "the run ended with \(run.process.terminationStatus): \(lines)")
    }
}
