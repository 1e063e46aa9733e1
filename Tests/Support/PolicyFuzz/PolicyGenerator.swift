/// One generated input: the files of a case directory (the policy given to the
/// loader, what it extends, seccomp profiles, odd files its keys point at) and the
/// strategy that made it, for the report.
public struct FuzzCase {
    public enum Content {
        case bytes([UInt8])
        case fifo
        case directory
        case symlink(String)
    }

    public struct File {
        /// Relative to the case directory.
        public var path: String
        public var content: Content
    }

    public var seed: UInt64
    public var index: Int
    public var strategy: String
    /// The policy file given to the loader, relative to the case directory.
    public var root: String = "policy.toml"
    public var files: [File] = []

    mutating func add(_ path: String, _ text: String) { files.append(File(path: path, content: .bytes(Array(text.utf8)))) }
    mutating func add(_ path: String, bytes: [UInt8]) { files.append(File(path: path, content: .bytes(bytes))) }
    mutating func add(_ path: String, _ content: Content) { files.append(File(path: path, content: content)) }
}

/// A structure-aware generator of malformed and hostile policies. Every case comes
/// from (seed, index) alone. Strategies: mutations of the shipped policies (text and
/// value level), policies built from the key schema with edge values and wrong types,
/// inputs at and beyond each bound of `PolicyLimits`, bad encodings, `extends` graphs
/// (cycles, depth, odd targets), and malformed seccomp profiles.
public struct PolicyGenerator {
    /// (file name, text) of the shipped policies: the corpus the mutations start from.
    public let shipped: [(name: String, text: String)]

    public init(shipped: [(name: String, text: String)]) {
        precondition(!shipped.isEmpty, "the generator needs the shipped policies")
        self.shipped = shipped
    }

    public static let strategies = ["mutate-shipped", "schema", "wrong-type", "bounds", "encoding",
                                    "extends", "seccomp-profile", "splice"]

    public func generate(seed: UInt64, index: Int) -> FuzzCase {
        var r = FuzzRandom(seed: seed, case: index)
        let strategy = Self.strategies[r.below(Self.strategies.count)]
        var c = FuzzCase(seed: seed, index: index, strategy: strategy)
        switch strategy {
        case "mutate-shipped": mutateShipped(&c, &r)
        case "schema": schema(&c, &r)
        case "wrong-type": wrongType(&c, &r)
        case "bounds": bounds(&c, &r)
        case "encoding": encoding(&c, &r)
        case "extends": extendsGraph(&c, &r)
        case "seccomp-profile": seccompProfile(&c, &r)
        default: splice(&c, &r)
        }
        return c
    }

    // MARK: - Strategies

    private func mutateShipped(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let (name, text) = r.pick(shipped)
        var bytes = Array(text.utf8)
        for _ in 0..<(1 + r.below(4)) { TextMutator.mutate(&bytes, &r, corpus: shipped) }
        c.strategy += " \(name)"
        c.add("policy.toml", bytes: bytes)
        if r.oneIn(3) { addOddNeighbours(&c, &r) }
    }

    private func schema(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        var doc = PolicyDocument.random(&r, wrongTypes: r.oneIn(4))
        if r.oneIn(3) { doc.extendsList = [r.pick(["base", "agent", "strict", "ci-build", "agent-net"])] }
        var bytes = Array(doc.render(&r).utf8)
        if r.oneIn(3) { TextMutator.mutate(&bytes, &r, corpus: shipped) }
        c.add("policy.toml", bytes: bytes)
        if r.oneIn(4) { addOddNeighbours(&c, &r) }
    }

    /// A valid-looking policy with one key (or a few) of the wrong type.
    private func wrongType(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        var doc = PolicyDocument.random(&r, wrongTypes: false)
        for _ in 0..<(1 + r.below(3)) {
            let key = r.pick(PolicySchema.keys)
            doc.set(key.table, key.name, Values.wrongType(for: key.kind, &r))
            c.strategy += " \(key.table).\(key.name)"
        }
        c.add("policy.toml", doc.render(&r))
    }

    /// Inputs at, just past and far past each bound of `PolicyLimits`.
    private func bounds(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let (text, what) = HostileShapes.random(&r)
        c.strategy += " \(what)"
        c.add("policy.toml", text)
    }

    private func encoding(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let (_, text) = r.pick(shipped)
        var bytes = Array(text.utf8)
        for _ in 0..<(1 + r.below(3)) {
            let insert = r.pick(Encodings.hostile)
            let at = r.below(bytes.count + 1)
            bytes.insert(contentsOf: insert, at: at)
        }
        if r.oneIn(4) { bytes.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: 0) }   // BOM
        if r.oneIn(4) { bytes = bytes.flatMap { $0 == 0x0A ? [0x0D, 0x0A] : [$0] } }   // CRLF
        if r.oneIn(8) { bytes = bytes.map { $0 == 0x0A ? 0x0D : $0 } }   // lone CR
        c.add("policy.toml", bytes: bytes)
    }

    /// Several files with `extends` edges between them: cycles, diamonds, long chains,
    /// and targets that are not policy files.
    private func extendsGraph(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let n = 1 + r.skewed(max: 40)
        let names = (0..<n).map { $0 == 0 ? "policy" : "p\($0)" }
        let odd = addOddNeighbours(&c, &r)
        for (i, name) in names.enumerated() {
            var targets: [String] = []
            let shape = r.below(4)
            switch shape {
            case 0 where i + 1 < n: targets = ["\(names[i + 1])"]   // a chain
            case 1: targets = [r.pick(names)]                           // anything, itself included
            case 2: targets = (0..<r.below(4)).map { _ in r.pick(names) }
            default: targets = []
            }
            if r.oneIn(4) { targets.append(r.pick(odd + Values.extendsTargets)) }
            if r.oneIn(6) { targets.append(r.pick(["base", "agent", "strict", "ci-build", "agent-net"])) }
            // Names, paths and files: "p3", "./p3.toml", "{policy_dir}/p3.toml", …
            let written = targets.map { t -> String in
                guard names.contains(t) else { return t }
                return r.pick([t, "./\(t).toml", "\(t).toml", "../\(Self.caseDirName)/\(t).toml", "{policy_dir}/\(t).toml"])
            }
            var doc = r.oneIn(3) ? PolicyDocument.random(&r, wrongTypes: false) : PolicyDocument()
            var text: String
            if r.oneIn(8), !written.isEmpty {
                // A wrong shape for extends itself.
                let first = Values.quoted(written[0], &r)
                let all = written.map { Values.quoted($0, &r) }
                let shapes = ["[" + all.joined(separator: ", ") + ", 1]", "{ a = \(first) }", "[[\(first)]]",
                              "\(first)\nextends = []", "true"]
                text = "extends = " + r.pick(shapes) + "\n"
                text += doc.render(&r)
            } else {
                doc.extendsList = written
                text = doc.render(&r)
            }
            c.add(name + ".toml", text)
        }
        c.strategy += " files=\(n)"
        // Sometimes the file given to the loader is itself no policy file.
        if r.oneIn(12) { c.root = String(r.pick(odd).dropFirst(2)); c.strategy += " root=\(c.root)" }
    }

    private func seccompProfile(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let (json, what) = ProfileShapes.random(&r)
        c.strategy += " \(what)"
        let reference: String
        switch r.below(4) {
        case 0:
            c.add("profiles/fuzz.json", bytes: json)
            reference = "fuzz"
        case 1:
            c.add("p.json", bytes: json)
            reference = "{policy_dir}/p.json"
        case 2:
            c.add("sub/p.json", bytes: json)
            reference = r.pick(["./sub/p.json", "sub/p.json", "sub/../sub/p.json"])
        default:
            let odd = addOddNeighbours(&c, &r)
            reference = r.pick(odd + ["/dev/zero", "/dev/null", "/proc/self/status", "/", ".", "..", "", "none", "default",
                                      "{policy_dir}", "{cwd}/x.json", "x.json", "/nonexistent/x.json",
                                      String(repeating: "a", count: 300) + ".json", "../" + String(repeating: "../", count: 50) + "etc/passwd"])
        }
        var doc = PolicyDocument.random(&r, wrongTypes: false)
        doc.set("seccomp", "profile", Values.quoted(reference, &r))
        if r.oneIn(3) { doc.extendsList = ["base"] }
        c.add("policy.toml", doc.render(&r))
    }

    /// Lines of two shipped policies interleaved, then mutated.
    private func splice(_ c: inout FuzzCase, _ r: inout FuzzRandom) {
        let a = r.pick(shipped).text.split(separator: "\n", omittingEmptySubsequences: false)
        let b = r.pick(shipped).text.split(separator: "\n", omittingEmptySubsequences: false)
        var lines: [Substring] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j >= b.count || (i < a.count && r.oneIn(2)) { lines.append(a[i]); i += 1 } else { lines.append(b[j]); j += 1 }
        }
        var bytes = Array(lines.joined(separator: "\n").utf8)
        if r.oneIn(2) { TextMutator.mutate(&bytes, &r, corpus: shipped) }
        c.add("policy.toml", bytes: bytes)
    }

    /// The directory name a case is written to (`../case/x.toml` names a sibling).
    public static let caseDirName = "case"

    /// Files a key may point at that are not policy files: a FIFO, a directory, a
    /// symlink loop, links to devices. Returns how a policy would name them.
    @discardableResult
    private func addOddNeighbours(_ c: inout FuzzCase, _ r: inout FuzzRandom) -> [String] {
        var names: [String] = []
        if r.oneIn(2) { c.add("fifo.toml", .fifo); names.append("./fifo.toml") }
        if r.oneIn(2) { c.add("dir.toml", .directory); names.append("./dir.toml") }
        if r.oneIn(2) { c.add("loop.toml", .symlink("loop.toml")); names.append("./loop.toml") }
        if r.oneIn(2) { c.add("zero.toml", .symlink("/dev/zero")); names.append("./zero.toml") }
        if r.oneIn(3) { c.add("null.toml", .symlink("/dev/null")); names.append("./null.toml") }
        if r.oneIn(3) { c.add("dangling.toml", .symlink("nowhere/x.toml")); names.append("./dangling.toml") }
        if r.oneIn(3) { c.add("self.json", .symlink("self.json")); names.append("./self.json") }
        if r.oneIn(3) { c.add("fifo.json", .fifo); names.append("./fifo.json") }
        if r.oneIn(3) { c.add("zero.json", .symlink("/dev/zero")); names.append("./zero.json") }
        if names.isEmpty { c.add("fifo.toml", .fifo); names.append("./fifo.toml") }
        return names
    }
}
