import Foundation
import Testing
import TOMLKit
@testable import SandboxPolicy

/// Policy files written to cost the loader time or memory (issue 12): each is refused
/// by the bound meant for it, named in the diagnostic, with a handful of diagnostics
/// at most. Speed is not asserted here (Benchmarks/ and the integration test measure
/// it); what is asserted is which bound refused the file — before the bounds, the
/// 20 000-part key took 60–90 s and 0.5–2 GB, the 40 000-part one crashed the parser
/// (stack overflow), the 10 MB file wrote 80 MB of diagnostics.
enum HostileCorpus {
    /// One dotted key of `parts` parts, `part00000.part00001…` (10 bytes a part: 20 000
    /// parts is 200 KB on one line).
    static func longDottedKey(parts: Int) -> String {
        (0..<parts).map { String(format: "part%05d", $0) }.joined(separator: ".") + " = 1\n"
    }

    /// One dotted key of `parts` one-letter parts: 20 000 parts in 40 KB, under the line bound.
    static func compactDottedKey(parts: Int) -> String {
        Array(repeating: "a", count: parts).joined(separator: ".") + " = 1\n"
    }

    /// `unknown_key_N = "value"` lines up to `bytes`.
    static func unknownKeys(bytes: Int) -> String {
        var out = ""
        out.reserveCapacity(bytes + 64)
        var i = 0
        while out.utf8.count < bytes {
            out += "unknown_key_\(i) = \"value\"\n"
            i += 1
        }
        return out
    }

    /// `a = {b = {b = … 1 …}}`, `levels` inline tables deep.
    static func nestedInlineTables(levels: Int) -> String {
        "a = " + String(repeating: "{b = ", count: levels) + "1" + String(repeating: "}", count: levels) + "\n"
    }

    /// `[[a.a.a…]]` with `parts` parts.
    static func deepArrayOfTables(parts: Int) -> String {
        "[[" + Array(repeating: "a", count: parts).joined(separator: ".") + "]]\n"
    }

    /// `a = [[[…]]]`, `levels` arrays deep.
    static func nestedArrays(levels: Int) -> String {
        "a = " + String(repeating: "[", count: levels) + String(repeating: "]", count: levels) + "\n"
    }

    /// `filesystem.ro` with `count` entries.
    static func hugeArray(count: Int) -> String {
        "[filesystem]\nro = [" + Array(repeating: "\"/x\"", count: count).joined(separator: ",") + "]\n"
    }

    /// A JSON array of `bytes` bytes: `[1,1,…]`.
    static func jsonArray(bytes: Int) -> Data {
        var d = Data(capacity: bytes)
        d.append(UInt8(ascii: "["))
        let chunk = Data("1,".utf8)
        while d.count + 3 < bytes { d.append(chunk) }
        d.append(contentsOf: Array("1]".utf8))
        return d
    }
}

@Suite struct HostilePolicyTests {
    /// The diagnostics of loading `text` as a policy file.
    private func refuse(_ text: String, _ name: String = "hostile.toml") -> [PolicyDiagnostic] {
        let s = PolicyScratch()
        s.write(name, text)
        return s.diagnostics(name)
    }

    /// Exactly one diagnostic, naming the file and the bound.
    private func expectBound(_ diagnostics: [PolicyDiagnostic], _ bound: String, file: String = "hostile.toml",
                             sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(diagnostics.count == 1, "\(diagnostics.count) diagnostics: \(diagnostics.prefix(3))", sourceLocation: sourceLocation)
        guard let d = diagnostics.first else { return }
        #expect(d.message.contains(bound), "\(d)", sourceLocation: sourceLocation)
        #expect(d.file.hasSuffix(file), "\(d)", sourceLocation: sourceLocation)
    }

    // MARK: the corpus of issue 12

    @Test func longDottedKeysHitTheLineBound() {
        for parts in [20_000, 40_000] {
            let text = HostileCorpus.longDottedKey(parts: parts)
            #expect(text.utf8.count >= parts * 10)
            let d = refuse(text)
            expectBound(d, "line length limit exceeded")
            #expect(d.first?.line == 1)
        }
    }

    @Test func aDottedKeyOf20000PartsHitsTheKeyDepthBound() {
        let d = refuse(HostileCorpus.compactDottedKey(parts: 20_000))
        expectBound(d, "key depth limit exceeded")
        #expect(d.first?.message.contains("more than \(PolicyLimits.maxKeyDepth) levels") == true)
    }

    @Test func tenMegabytesOfUnknownKeysHitTheSizeBoundUnread() {
        let d = refuse(HostileCorpus.unknownKeys(bytes: 10 << 20))
        expectBound(d, "file size limit exceeded")
        #expect(d.first?.message.contains("1 MiB") == true)
    }

    @Test func deepNestingHitsTheKeyDepthBound() {
        expectBound(refuse(HostileCorpus.nestedInlineTables(levels: 10_000)), "key depth limit exceeded")
        expectBound(refuse(HostileCorpus.deepArrayOfTables(parts: 10_000)), "key depth limit exceeded")
        expectBound(refuse(HostileCorpus.nestedArrays(levels: 10_000)), "key depth limit exceeded")
    }

    @Test func aMillionElementArrayIsRefused() {
        // 5 MB: over the size bound before the array is seen.
        expectBound(refuse(HostileCorpus.hugeArray(count: 1_000_000)), "file size limit exceeded")
        // Within the size bound: the array bound.
        let d = refuse(HostileCorpus.hugeArray(count: PolicyLimits.maxArrayItems + 1))
        expectBound(d, "array length limit exceeded")
        #expect(d.first?.line == 2)
    }

    @Test func anExtendsChain100DeepStopsAtTheDepthBound() {
        let s = PolicyScratch()
        for i in 0..<100 { s.write("c\(i).toml", "extends = [\"./c\(i + 1).toml\"]\n") }
        s.write("c100.toml", "version = 1\n")
        let d = s.diagnostics("c0.toml")
        #expect(d.count == 1, "\(d)")
        let depth = PolicyLimits.maxExtendsDepth
        #expect(d.first?.message.contains("extends depth limit exceeded") == true, "\(d)")
        // Reported where the chain went too deep, at the key that did it.
        #expect(d.first?.file.hasSuffix("c\(depth).toml") == true, "\(d)")
        #expect(d.first?.keyPath == "extends[0]")
        #expect(d.first?.line == 1)
    }

    @Test func anExtendsChainAtTheDepthBoundLoads() throws {
        let s = PolicyScratch()
        let depth = PolicyLimits.maxExtendsDepth
        for i in 0..<depth { s.write("c\(i).toml", "extends = [\"./c\(i + 1).toml\"]\n") }
        s.write("c\(depth).toml", "[process]\nhostname = \"deep\"\n")
        let p = try s.load("c0.toml")
        #expect(p.process.hostname == "deep")
        #expect(p.sources.count == depth + 1)
    }

    @Test func extendsOfAFIFOOrDevZeroIsRefusedUnopened() throws {
        let s = PolicyScratch()
        let fifo = s.dir + "/base.toml"
        #expect(mkfifo(fifo, 0o600) == 0)
        // A FIFO with no writer: opening it for reading would block forever.
        s.write("fifo.toml", "version = 1\nextends = [\"./base.toml\"]\n")
        let d1 = s.diagnostics("fifo.toml")
        #expect(d1.count == 1, "\(d1)")
        #expect(d1.first?.file.hasSuffix("fifo.toml") == true)
        #expect(d1.first?.keyPath == "extends[0]")
        #expect(d1.first?.line == 2)
        #expect(d1.first?.message.contains("is a FIFO (named pipe), not a regular file") == true, "\(d1)")

        s.write("zero.toml", "extends = [\"/dev/zero\"]\n")
        let d2 = s.diagnostics("zero.toml")
        #expect(d2.count == 1, "\(d2)")
        #expect(d2.first?.keyPath == "extends[0]")
        #expect(d2.first?.message.contains("\"/dev/zero\" is a character device, not a regular file") == true, "\(d2)")

        // The policy asked for itself.
        let d3 = s.diagnostics("base.toml")
        #expect(d3.map(\.message) == ["cannot read policy file: it is a FIFO (named pipe), not a regular file"])
        #expect(throws: PolicyError([PolicyDiagnostic(file: "/dev/zero", message: "cannot read policy file: it is a character device, not a regular file")])) {
            try PolicyLoader(searchPath: []).load(path: "/dev/zero")
        }
    }

    @Test func aSeccompProfileAtAFIFOOrDevZeroIsRefusedUnopened() {
        let s = PolicyScratch()
        #expect(mkfifo(s.dir + "/fifo.json", 0o600) == 0)
        s.write("fifo.toml", "[seccomp]\nprofile = \"./fifo.json\"\n")
        let d1 = s.diagnostics("fifo.toml")
        #expect(d1.count == 1, "\(d1)")
        #expect(d1.first?.keyPath == "seccomp.profile")
        #expect(d1.first?.line == 2)
        #expect(d1.first?.message.contains("fifo.json is a FIFO (named pipe), not a regular JSON file") == true, "\(d1)")

        s.write("zero.toml", "[seccomp]\nprofile = \"/dev/zero\"\n")
        let d2 = s.diagnostics("zero.toml")
        #expect(d2.count == 1, "\(d2)")
        #expect(d2.first?.keyPath == "seccomp.profile")
        #expect(d2.first?.message.contains("/dev/zero is a character device, not a regular JSON file") == true, "\(d2)")

        // Loaded directly, too.
        #expect(throws: PolicyError([PolicyDiagnostic(file: "/dev/zero", message: "cannot read seccomp profile: it is a character device, not a regular file")])) {
            try SeccompProfile.load(path: "/dev/zero")
        }
    }

    @Test func a50MBSeccompProfileIsRefusedUnread() throws {
        let s = PolicyScratch()
        let path = s.dir + "/big.json"
        try HostileCorpus.jsonArray(bytes: 50 << 20).write(to: URL(fileURLWithPath: path))
        s.write("big.toml", "[seccomp]\nprofile = \"./big.json\"\n")
        let d = s.diagnostics("big.toml")
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.file == path)
        #expect(d.first?.message.contains("profile size limit exceeded") == true, "\(d)")
    }

    // MARK: each bound, at its edge

    @Test func aJSONProfileWithinTheSizeBoundHitsTheValueAndDepthBounds() {
        // 1 MiB of `1,`: half a million values.
        let many = HostileCorpus.jsonArray(bytes: PolicyLimits.maxProfileBytes)
        #expect(throws: PolicyError.self) { try SeccompProfile.load(data: many, source: "/many.json") }
        do {
            _ = try SeccompProfile.load(data: many, source: "/many.json")
        } catch let e as PolicyError {
            #expect(e.diagnostics.count == 1)
            #expect(e.diagnostics.first?.message.contains("JSON value count limit exceeded") == true, "\(e)")
        } catch {
            Issue.record("\(error)")
        }
        let deep = Data((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8)
        do {
            _ = try SeccompProfile.load(data: deep, source: "/deep.json")
            Issue.record("a profile nested 100 deep was accepted")
        } catch let e as PolicyError {
            #expect(e.diagnostics.count == 1)
            #expect(e.diagnostics.first?.message.contains("JSON depth limit exceeded") == true, "\(e)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func keysBeyondTheKeyBoundAreRefused() {
        let ok = "[process.env.set]\n" + (0..<PolicyLimits.maxKeys - 1).map { "V\($0) = \"x\"\n" }.joined()
        #expect(refuse(ok).isEmpty)
        let tooMany = "[process.env.set]\n" + (0..<PolicyLimits.maxKeys).map { "V\($0) = \"x\"\n" }.joined()
        let d = refuse(tooMany)
        expectBound(d, "key count limit exceeded")
        #expect(d.first?.line == PolicyLimits.maxKeys + 1)
    }

    @Test func valuesBeyondTheValueBoundAreRefused() {
        // Arrays within their own bound, values past the file's.
        let arrays = PolicyLimits.maxValues / PolicyLimits.maxArrayItems + 1
        let row = "[" + Array(repeating: "1", count: PolicyLimits.maxArrayItems).joined(separator: ",") + "]"
        let text = (0..<arrays).map { "x\($0) = \(row)\n" }.joined()
        expectBound(refuse(text), "value count limit exceeded: the file has more than \(PolicyLimits.maxValues) values")
    }

    @Test func theValueBoundCoversTheWholeExtendsGraph() {
        // Each file within the bound; together past it (the parser keeps every tree).
        let s = PolicyScratch()
        let row = "[" + Array(repeating: "1", count: PolicyLimits.maxArrayItems).joined(separator: ",") + "]"
        let perFile = 10
        let files = PolicyLimits.maxValues / (perFile * PolicyLimits.maxArrayItems) + 1
        for i in 0..<files {
            let next = i + 1 < files ? "extends = [\"./v\(i + 1).toml\"]\n" : ""
            s.write("v\(i).toml", next + "[x]\n" + (0..<perFile).map { "a\($0) = \(row)\n" }.joined())
        }
        let d = s.diagnostics("v0.toml")
        #expect(d.contains { $0.message.contains("the policy files of the extends graph have more than \(PolicyLimits.maxValues) values together") }, "\(d)")
    }

    @Test func aLongStringIsRefused() {
        let long = String(repeating: "a", count: PolicyLimits.maxStringBytes + 1)
        expectBound(refuse("[process.env.set]\nA = \"\(long)\"\n"), "string length limit exceeded")
        expectBound(refuse("[process.env.set]\nA = '''\n\(long)'''\n"), "string length limit exceeded")
        let fits = String(repeating: "a", count: PolicyLimits.maxStringBytes)
        #expect(refuse("[process.env.set]\nA = \"\(fits)\"\n").isEmpty)
    }

    @Test func aNULByteIsRefused() {
        let d = refuse("version = 1\n[process]\nhostname = \"a\0b\"\n")
        expectBound(d, "NUL byte")
        #expect(d.first?.line == 3)
    }

    @Test func theNumberOfFilesInTheExtendsGraphIsBounded() {
        let s = PolicyScratch()
        let count = PolicyLimits.maxPolicyFiles + 5
        for i in 0..<count { s.write("b\(i).toml", "version = 1\n") }
        s.write("root.toml", "extends = [" + (0..<count).map { "\"./b\($0).toml\"" }.joined(separator: ", ") + "]\n")
        let d = s.diagnostics("root.toml")
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.contains("policy file count limit exceeded") == true, "\(d)")
        #expect(d.first?.keyPath == "extends[\(PolicyLimits.maxPolicyFiles - 1)]")
    }

    @Test func theBytesOfTheExtendsGraphAreBounded() {
        // Comment-only files: nothing for the parser to keep, only bytes to read.
        let s = PolicyScratch()
        let line = "# " + String(repeating: "x", count: 1000) + "\n"
        let big = String(repeating: line, count: (PolicyLimits.maxFileBytes - 1024) / line.utf8.count)
        let files = PolicyLimits.maxTotalBytes / big.utf8.count + 1
        for i in 0..<files { s.write("big\(i).toml", big) }
        s.write("root.toml", "extends = [" + (0..<files).map { "\"./big\($0).toml\"" }.joined(separator: ", ") + "]\n")
        let d = s.diagnostics("root.toml")
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.contains("total size limit exceeded") == true, "\(d)")
    }

    @Test func mergedListsAreBoundedToo() {
        let s = PolicyScratch()
        let half = PolicyLimits.maxArrayItems / 2 + 1
        s.write("a.toml", HostileCorpusPaths.ro(prefix: "/a", count: half))
        s.write("b.toml", "extends = [\"./a.toml\"]\n" + HostileCorpusPaths.ro(prefix: "/b", count: half))
        let d = s.diagnostics("b.toml")
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.keyPath == "filesystem.ro")
        #expect(d.first?.message.contains("array length limit exceeded: \(2 * half) entries after merging") == true, "\(d)")
    }

    @Test func diagnosticsAreCapped() {
        let d = refuse((0..<4000).map { "unknown_\($0) = 1\n" }.joined())
        #expect(d.count == PolicyLimits.maxDiagnostics + 1)
        #expect(d.last?.message.hasPrefix("… and 3950 more problems not shown") == true, "\(String(describing: d.last))")
        #expect(d.dropLast().allSatisfy { $0.message.hasPrefix("unknown top-level key") })
    }

    @Test func longKeysAreCutInDiagnosticsAndRefusedPastTheStringBound() {
        let key = String(repeating: "k", count: 10_000)
        let d = refuse("\(key) = 1\n")
        #expect(d.count == 1)
        #expect(d.first?.message.hasPrefix("unknown top-level key") == true)
        #expect((d.first?.message.count ?? .max) < PolicyLimits.maxDiagnosticLength + 40, "\(d.first?.message.count ?? 0)")
        #expect(d.first?.message.hasSuffix("more bytes]") == true)
        #expect((d.first?.keyPath?.count ?? .max) < PolicyLimits.maxDiagnosticLength + 40)
        let longer = String(repeating: "k", count: PolicyLimits.maxStringBytes + 1)
        expectBound(refuse("\(longer) = 1\n"), "string length limit exceeded: a key is longer than")
    }

    // MARK: the scan before the parser

    @Test func thePrescanPassesValidTOMLThrough() {
        let text = #"""
            # a comment with [brackets] and "quotes" and a = b
            version = 1
            "quoted.key" = 'literal'
            a."b.c".d = 1979-05-27 07:32:00Z
            multi = """
            line one ] } [ {
            still "" in it \
            end"""
            lit = '''
            raw ''' # comment
            arr = [
              1, # one
              [2, 3],
              { x = 1, y = [4, 5] },
            ]
            inline = { a = { b = "}" }, c = [] }
            [table . sub]
            k = -1.5e3
            [[arr_of]]
            x = true
            [[arr_of]]
            x = false
            """#
        guard case .complete(let values) = PolicyPrescan.check(Array(text.utf8)) else {
            Issue.record("the scan did not read the valid text through: \(PolicyPrescan.check(Array(text.utf8)))")
            return
        }
        #expect(values == 22)   // scalars, arrays and inline tables, not the tables of headers
        #expect((try? TOMLTable(string: text)) != nil)
        // The shipped policies, too.
        for name in ["base", "agent", "agent-net", "ci-build", "strict"] {
            let path = repositoryRoot() + "/Policies/\(name).toml"
            let bytes = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
            #expect(!bytes.isEmpty)
            if case .complete = PolicyPrescan.check(bytes) {} else { Issue.record("\(name).toml: \(PolicyPrescan.check(bytes))") }
        }
    }

    @Test func thePrescanLeavesSyntaxErrorsToTheParser() {
        #expect(PolicyPrescan.check(Array("a = \nb = 1\n".utf8)) == .stopped)
        #expect(PolicyPrescan.check(Array("a = 1 b = 2\n".utf8)) == .stopped)
        let d = refuse("[process\nhostname = \"x\"\n")
        #expect(d.count == 1)
        #expect(d.first?.message.hasPrefix("malformed TOML") == true, "\(d)")
    }

    @Test func theTreeIsCheckedWhenTheScanStoppedEarly() throws {
        // The backstop for text the scan does not follow but the parser accepts.
        let deep = try TOMLTable(string: "a.b.c.d.e.f.g.h.i = 1\n")
        let (found, _) = TOMLBounds.check(deep)
        #expect(found.count == 1)
        #expect(found.first?.message.contains("key depth limit exceeded") == true)
        let wide = try TOMLTable(string: "a = [" + Array(repeating: "1", count: PolicyLimits.maxArrayItems + 1).joined(separator: ",") + "]\n")
        #expect(TOMLBounds.check(wide).findings.first?.message.contains("array length limit exceeded") == true)
        let ok = try TOMLTable(string: "[network]\nallow = [{ cidr = \"10.0.0.0/8\", ports = [443] }]\n")
        #expect(TOMLBounds.check(ok).findings.isEmpty)
        #expect(TOMLBounds.check(ok).values == 5)
    }

    @Test func policyFileReadsAtMostTheLimit() throws {
        let s = PolicyScratch()
        let path = s.write("f.toml", String(repeating: "x", count: 100))
        #expect(try PolicyFile.read(path, limit: 100).get().count == 100)
        #expect(PolicyFile.read(path, limit: 99) == .failure(.tooLarge(limit: 99)))
        #expect(PolicyFile.read(s.dir, limit: 100) == .failure(.notRegular("a directory")))
        #expect(PolicyFile.read(s.dir + "/none", limit: 100) == .failure(.missing))
        #expect(PolicyFile.read("/dev/zero", limit: 100) == .failure(.notRegular("a character device")))
    }
}

enum HostileCorpusPaths {
    /// `[filesystem] ro = ["/prefix/p0?", …]`.
    static func ro(prefix: String, count: Int) -> String {
        "[filesystem]\nro = [" + (0..<count).map { "\"\(prefix)/p\($0)?\"" }.joined(separator: ", ") + "]\n"
    }
}
