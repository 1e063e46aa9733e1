import FoundationEssentials
import SandboxVocabulary
internal import TOMLKit

/// Reads policy files into a validated `Policy`: parses every file of the `extends`
/// chain, validates each on its own, merges them base-first and applies the
/// defaults. Every problem in every file is reported at once (`PolicyError`).
///
/// Merge rules (Docs/policy-reference.md, "Merge rules"): scalars override, and `"!"`
/// unsets one whose absence means something (`memory`, `timeout`, …); lists append,
/// an entry `"!X"` removes an inherited `X` (for `network.allow`: every rule with that
/// cidr or host), `{ replace = […] }` replaces the inherited list; tables (`env.set`,
/// `rlimits`, `hosts`, `pin`) merge key by key, and a key set to `"!"` (not in
/// `env.set`) is removed. A base reached twice (a diamond) is merged once, at its
/// first position.
public struct PolicyLoader: Sendable {
    /// Directories searched, in order, for `extends = ["NAME"]` and `--policy NAME`.
    public var searchPath: [String]
    /// Directories searched, in order, for `seccomp.profile = "NAME"` (`NAME.json`).
    public var profileSearchPath: [String]

    /// - Parameter profileSearchPath: where named seccomp profiles are looked up;
    ///   nil: `Profiles/seccomp` of the located `DataDirectory`, then the built-in profiles.
    public init(searchPath: [String], profileSearchPath: [String]? = nil) {
        self.searchPath = searchPath
        self.profileSearchPath = profileSearchPath ?? PolicyLoader.defaultProfileSearchPath(data: DataDirectory.locate())
    }

    /// `$SANDBOX_POLICY_PATH` (colon-separated), then the data directory's `Policies/`,
    /// then the policies built into the binary (`BuiltIn.policies`): the first file
    /// of a name wins, so both of the others override a built-in one.
    public static func defaultSearchPath() -> [String] {
        defaultSearchPath(environment: Environment.only("SANDBOX_POLICY_PATH"), data: DataDirectory.locate())
    }

    static func defaultSearchPath(environment: [String: String], data: DataDirectory?) -> [String] {
        var dirs = (environment["SANDBOX_POLICY_PATH"] ?? "").split(separator: ":").map(String.init)
        if let data { dirs.append(data.policies) }
        dirs.append(BuiltIn.policies)
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// The data directory's `Profiles/seccomp`, then the built-in profiles.
    static func defaultProfileSearchPath(data: DataDirectory?) -> [String] {
        (data.map { [$0.seccompProfiles] } ?? []) + [BuiltIn.seccompProfiles]
    }

    // MARK: - Resolving names

    private enum Resolution {
        case found(String)
        case notFound(String)   // message
    }

    /// Whether `extends`/`--policy` text names a file rather than a policy in the search path.
    static func isPath(_ text: String) -> Bool {
        text.contains("/") || text.hasSuffix(".toml") || text == "." || text == ".."
    }

    private func resolveTarget(_ text: String, relativeTo dir: String?) -> Resolution {
        if PolicyLoader.isPath(text) {
            if text.hasPrefix("/") { return .found(Paths.normalize(text)) }
            // `builtin:Policies/base.toml`: the copy in the binary, past any override.
            if BuiltIn.isBuiltIn(text) { return .found(BuiltIn.join(BuiltIn.scheme, String(text.dropFirst(BuiltIn.scheme.count)))) }
            return .found(dir.map { Paths.join($0, text) } ?? Paths.normalize(text))
        }
        let looked = searchPath.map { Paths.join($0, text + ".toml") }
        if let hit = looked.first(where: Paths.isFile) { return .found(hit) }
        if looked.isEmpty {
            return .notFound("no policy named \"\(text)\": the policy search path is empty (set SANDBOX_POLICY_PATH or SANDBOX_DATA_DIR, or give a path such as \"./\(text).toml\")")
        }
        return .notFound("no policy named \"\(text)\"; looked for \(looked.joinedText(separator: ", ")); give a name from the search path or a path such as \"./\(text).toml\"")
    }

    /// `"agent"` → the first `<dir>/agent.toml` of the search path; `"./x.toml"`,
    /// `"../a/b.toml"`, `"b.toml"`, `"/abs.toml"` → that path (relative ones joined to
    /// `dir` when given). Throws when a name is in no search directory; a path is
    /// returned whether or not it exists (`load` reports a missing file).
    public func resolve(nameOrPath: String, relativeTo dir: String?) throws -> String {
        switch resolveTarget(nameOrPath, relativeTo: dir) {
        case .found(let path): return path
        case .notFound(let message): throw PolicyError([PolicyDiagnostic(file: nameOrPath, message: message)])
        }
    }

    /// `resolve(nameOrPath:relativeTo: nil)` then `load(path:)`.
    public func load(nameOrPath: String) throws -> Policy {
        try load(path: resolve(nameOrPath: nameOrPath, relativeTo: nil))
    }

    // MARK: - Loading

    /// Loads `path` and everything it extends. Throws `PolicyError` with every
    /// diagnostic of every file.
    public func load(path: String) throws -> Policy {
        var session = LoadSession(loader: self)
        let root = FileRef(display: path, absolute: Paths.absolute(path))
        session.visit(root, stack: [])
        var diagnostics = session.diagnostics
        var omitted = session.omitted
        let layers = session.order

        var policy: Policy?
        let rootLayer = layers.last(where: { $0.absolutePath == root.absolute })
        if diagnostics.isEmpty, let rootLayer {
            var merger = Merger(rootFile: path)
            let built = merger.build(layers: layers, root: rootLayer,
                                     defaultName: Paths.deletingExtension(Paths.basename(path)))
            diagnostics += merger.diagnostics
            omitted += merger.omitted
            policy = built
        }
        if !diagnostics.isEmpty || policy == nil {
            if diagnostics.isEmpty {
                diagnostics.append(PolicyDiagnostic(file: path, message: "the policy could not be loaded"))
            }
            throw PolicyError(PolicyLimits.capped(LoadSession.ordered(diagnostics), extra: omitted, file: path))
        }
        return policy!
    }

    /// Reads and validates one file on its own (no `extends`), for tools and tests.
    ///
    /// Every bound of `PolicyLimits` that one file can exceed is checked here, each
    /// before the work it protects: the kind and size of the file before it is read
    /// (`PolicyFile`), the raw text before the TOML parser sees it (`PolicyPrescan`),
    /// the parsed tree before it is validated (`TOMLBounds`). The layer's own
    /// diagnostics stop at `PolicyLimits.maxDiagnostics`; `omitted` counts the rest.
    /// - Parameters:
    ///   - budget: bytes this file may have: what is left of `PolicyLimits.maxTotalBytes`.
    ///   - valueBudget: values it may hold: what is left of `PolicyLimits.maxValues`.
    func readLayer(_ file: FileRef, budget: Int = PolicyLimits.maxTotalBytes,
                   valueBudget: Int = PolicyLimits.maxValues) -> LayerRead {
        func refused(_ d: PolicyDiagnostic, bytes: Int = 0) -> LayerRead {
            LayerRead(layer: nil, diagnostics: [d], omitted: 0, bytes: bytes, values: 0)
        }
        let bytes: [UInt8]
        let limit = min(PolicyLimits.maxFileBytes, budget)
        switch PolicyFile.read(file.absolute, limit: limit) {
        case .success(let b):
            bytes = b
        case .failure(.tooLarge) where limit < PolicyLimits.maxFileBytes:
            return refused(PolicyDiagnostic(file: file.display, message: "total size limit exceeded: the files of the extends graph are larger than \(PolicyLimits.bytes(PolicyLimits.maxTotalBytes)) together"))
        case .failure(let why):
            return refused(PolicyDiagnostic(file: file.display, message: "cannot read policy file: \(why.reason)"))
        }
        let scan = PolicyPrescan.check(bytes, valueLimit: valueBudget)
        if case .exceeded(let found) = scan {
            return refused(PolicyDiagnostic(file: file.display, line: found.line, message: found.message), bytes: bytes.count)
        }
        guard let text = String(utf8Text: bytes) else {
            return refused(PolicyDiagnostic(file: file.display, message: "the file is not valid UTF-8; policy files are UTF-8 TOML"), bytes: bytes.count)
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            return refused(PolicyDiagnostic(file: file.display, line: e.source.begin.line, column: e.source.begin.column,
                                            message: "malformed TOML: \(e.description)"), bytes: bytes.count)
        } catch {
            return refused(PolicyDiagnostic(file: file.display, message: "malformed TOML: \(error)"), bytes: bytes.count)
        }
        // The scan checked every bound exactly unless it stopped early on text the
        // parser then accepted: check the parsed tree then.
        var values = 0
        if case .complete(let counted) = scan { values = counted }
        if scan == .stopped {
            let (exceeded, counted) = TOMLBounds.check(table, valueLimit: valueBudget)
            if !exceeded.isEmpty {
                let index = SourceIndex(source: text)
                return LayerRead(layer: nil, diagnostics: exceeded.map {
                    PolicyDiagnostic(file: file.display, keyPath: $0.path.components.isEmpty ? nil : $0.path.description,
                                     line: index.line(for: $0.path), message: $0.message)
                }, omitted: 0, bytes: bytes.count, values: counted)
            }
            values = counted
        }
        let reader = LayerReader(file: file.display, policyDir: Paths.dirname(file.absolute),
                                 index: SourceIndex(source: text), profileDirs: profileSearchPath)
        var layer = reader.read(table, absolutePath: file.absolute)
        layer.sha256 = Digest.sha256Hex(bytes)
        return LayerRead(layer: layer, diagnostics: reader.diagnostics, omitted: reader.omitted, bytes: bytes.count,
                         values: values)
    }

    /// One file read and validated on its own.
    struct LayerRead {
        var layer: PolicyLayer?
        /// At most `PolicyLimits.maxDiagnostics`; `omitted` counts the rest.
        var diagnostics: [PolicyDiagnostic]
        var omitted: Int
        /// Bytes read, counted against `PolicyLimits.maxTotalBytes`.
        var bytes: Int
        /// Values parsed, counted against `PolicyLimits.maxValues`.
        var values: Int
    }

    struct FileRef {
        /// As given (root) or as resolved (extends targets); used in diagnostics.
        var display: String
        /// Absolute, lexically normalised; used for `{policy_dir}` and `Policy.sources`.
        var absolute: String
        /// Symlinks resolved; two refs to the same file compare equal here.
        var identity: String { Paths.identity(absolute) }
    }

    /// Depth-first walk of the `extends` graph; `order` is the merge order (post-order,
    /// each file once). The walk stops at `PolicyLimits.maxExtendsDepth` levels and
    /// `PolicyLimits.maxPolicyFiles` files; each file keeps at most
    /// `PolicyLimits.maxDiagnostics` diagnostics and counts the rest in `omitted`.
    private struct LoadSession {
        let loader: PolicyLoader
        var diagnostics: [PolicyDiagnostic] = []
        var omitted = 0
        var order: [PolicyLayer] = []
        var done = Set<String>()
        var reportedCycles = Set<[String]>()
        var filesRead = 0
        var bytesRead = 0
        var valuesRead = 0
        var reportedFileLimit = false
        private var kept: [String: Int] = [:]
        private var indexes: [String: SourceIndex] = [:]

        init(loader: PolicyLoader) { self.loader = loader }

        mutating func visit(_ file: FileRef, stack: [FileRef]) {
            let id = file.identity
            if done.contains(id) { return }
            filesRead += 1
            let read = loader.readLayer(file, budget: PolicyLimits.maxTotalBytes - bytesRead,
                                        valueBudget: PolicyLimits.maxValues - valuesRead)
            bytesRead += read.bytes
            valuesRead += read.values
            for d in read.diagnostics { add(d) }
            omitted += read.omitted
            guard let layer = read.layer else { done.insert(id); return }
            let here = stack + [file]
            let dir = Paths.dirname(file.display)
            for (target, keyPath) in layer.extends {
                switch loader.resolveTarget(target, relativeTo: dir) {
                case .notFound(let message):
                    report(file, keyPath, message, layer: layer)
                case .found(let display):
                    let child = FileRef(display: display, absolute: Paths.absolute(display))
                    // Only a regular file is read: a FIFO would block, /dev/zero never ends.
                    let message: String?
                    switch PolicyFile.kind(child.absolute) {
                    case .regular: message = nil
                    case .missing where target.contains("{"):
                        // Templates are not expanded here: say so rather than "no file …/{policy_dir}/…".
                        message = "extends target \"\(target)\" not found: no file \(display); extends takes no templates such as {policy_dir}: a relative path is already relative to the directory of this file"
                    case .missing: message = "extends target \"\(target)\" not found: no file \(display)"
                    case .directory: message = "extends target \"\(target)\" is a directory (\(display)); name a .toml file"
                    case .special(let what): message = "extends target \"\(target)\" is \(what), not a regular file (\(display)); name a .toml file"
                    case .unreadable(let why): message = "extends target \"\(target)\" cannot be read (\(display)): \(why)"
                    }
                    if let message {
                        report(file, keyPath, message, layer: layer)
                        continue
                    }
                    let childID = child.identity
                    if let start = here.firstIndex(where: { $0.identity == childID }) {
                        let cycle = here[start...].map(\.display) + [here[start].display]
                        // Report each cycle once, however many files close it.
                        let key = here[start...].map(\.identity).sorted()
                        if reportedCycles.insert(key).inserted {
                            report(file, keyPath, "extends cycle: " + cycle.joinedText(separator: " -> "), layer: layer)
                        }
                        continue
                    }
                    if done.contains(childID) { continue }
                    // `here.count` is the level the child would be at (the root is level 0).
                    if here.count > PolicyLimits.maxExtendsDepth {
                        let chain = (here.map(\.display) + [display]).joinedText(separator: " -> ")
                        report(file, keyPath, "extends depth limit exceeded: \(chain) is more than \(PolicyLimits.maxExtendsDepth) levels of extends", layer: layer)
                        continue
                    }
                    if filesRead >= PolicyLimits.maxPolicyFiles {
                        if !reportedFileLimit {
                            reportedFileLimit = true
                            report(file, keyPath, "policy file count limit exceeded: the extends graph has more than \(PolicyLimits.maxPolicyFiles) files; \(display) and the files after it were not read", layer: layer)
                        }
                        continue
                    }
                    visit(child, stack: here)
                }
            }
            done.insert(id)
            order.append(layer)
        }

        /// Keeps the first `PolicyLimits.maxDiagnostics` of each file; counts the rest.
        private mutating func add(_ d: PolicyDiagnostic) {
            let n = kept[d.file, default: 0]
            guard n < PolicyLimits.maxDiagnostics else { omitted += 1; return }
            kept[d.file] = n + 1
            diagnostics.append(d)
        }

        private mutating func report(_ file: FileRef, _ keyPath: TOMLPath, _ message: String, layer: PolicyLayer) {
            guard kept[file.display, default: 0] < PolicyLimits.maxDiagnostics else { omitted += 1; return }
            // The source index is built only on this (rare) error path, once per file,
            // from at most the bytes the layer was read from.
            if indexes[file.absolute] == nil {
                let text = (try? PolicyFile.read(file.absolute, limit: PolicyLimits.maxFileBytes).get())
                    .flatMap { String(utf8Text: $0) } ?? ""
                indexes[file.absolute] = SourceIndex(source: text)
            }
            let line = indexes[file.absolute]?.line(for: keyPath)
            add(PolicyDiagnostic(file: file.display, keyPath: keyPath.description, line: line, message: message))
        }

        /// Groups diagnostics by file (in order of first appearance) and sorts each
        /// file's by line, so output follows the text.
        static func ordered(_ diagnostics: [PolicyDiagnostic]) -> [PolicyDiagnostic] {
            var files: [String] = []
            for d in diagnostics where !files.contains(d.file) { files.append(d.file) }
            return files.flatMap { f in
                diagnostics.enumerated()
                    .filter { $0.element.file == f }
                    .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
                    .map(\.element)
            }
        }
    }
}

/// Folds validated layers, base first, into a `Policy`, then checks what only the
/// merged result can show.
struct Merger {
    let rootFile: String
    var diagnostics: [PolicyDiagnostic] = []
    /// Diagnostics past `PolicyLimits.maxDiagnostics`, counted, not kept.
    var omitted = 0

    init(rootFile: String) { self.rootFile = rootFile }

    mutating func build(layers: [PolicyLayer], root: PolicyLayer, defaultName: String) -> Policy {
        var p = Policy(name: root.name ?? defaultName)
        p.version = 1
        p.sources = layers.map(\.absolutePath)
        p.sourceDigests = layers.map(\.sha256)
        var profile: (ref: ProfileRef, file: String, path: TOMLPath?)? = nil
        var allow = AllowMerge()
        /// The file that set `process.workdir` last (for a diagnostic with its line).
        var workdirLayer: PolicyLayer?

        for l in layers {
            if let v = l.hostname { p.process.hostname = v }
            if let v = l.user { p.process.user = v }
            if let v = l.group { p.process.group = v.value }
            if let v = l.workdir { p.process.workdir = v.value; workdirLayer = l }
            Merger.apply(l.envPass, to: &p.process.envPass)
            p.process.envSet.merge(l.envSet) { _, new in new }
            if let v = l.timeoutMs { p.process.timeoutMs = v.value }
            if let v = l.graceMs { p.process.graceMs = v }
            if let v = l.newSession { p.process.newSession = v }
            if let v = l.hostUID { p.process.hostUID = v }
            if let v = l.isolation { p.process.isolation = v }
            Merger.apply(l.nestedWithout, to: &p.process.nestedWithout)

            Merger.apply(l.ro, to: &p.filesystem.ro)
            Merger.apply(l.rw, to: &p.filesystem.rw)
            Merger.apply(l.tmpfs, to: &p.filesystem.tmpfs)
            Merger.apply(l.protect, to: &p.filesystem.protect)
            Merger.apply(l.mask, to: &p.filesystem.mask)
            Merger.apply(l.unixSockets, to: &p.filesystem.unixSockets)
            Merger.apply(l.socketScanSkip, to: &p.filesystem.socketScanSkip)
            if let v = l.socketScanLimit { p.filesystem.socketScanLimit = v }

            if let v = l.landlockMode { p.landlock.mode = v }
            if let v = l.landlockMinABI { p.landlock.minABI = v.value }
            if let v = l.connectTCP { p.landlock.connectTCP = Merger.apply(v, to: p.landlock.connectTCP) }
            if let v = l.bindTCP { p.landlock.bindTCP = Merger.apply(v, to: p.landlock.bindTCP) }
            Merger.apply(l.scope, to: &p.landlock.scope)

            if let v = l.seccompProfile { profile = (v, l.file, l.seccompProfilePath) }
            Merger.apply(l.deny, to: &p.seccomp.deny)
            if let v = l.socketFamilies { p.seccomp.socketFamilies = Merger.apply(v, to: p.seccomp.socketFamilies) }
            if let v = l.onViolation { p.seccomp.onViolation = v }

            Merger.apply(l.keep, to: &p.capabilities.keep)

            if let v = l.memory { p.resources.memoryBytes = v.value }
            if let v = l.swap { p.resources.swapBytes = v.value }
            if let v = l.pids { p.resources.pids = v.value }
            if let v = l.cpu { p.resources.cpu = v.value }
            if let v = l.io { p.resources.ioWeight = v.value }
            for (k, v) in l.rlimits { p.resources.rlimits[k] = v.value }
            Merger.apply(l.bestEffort, to: &p.resources.bestEffort)

            if let v = l.networkMode { p.network.mode = v }
            Merger.apply(l.dns, to: &p.network.dns)
            for edit in l.allow {
                if let unmatched = allow.apply(edit) { failUnmatched(unmatched, edit) }
            }
            Merger.apply(l.upstreamDNS, to: &p.network.upstreamDNS)
            Merger.apply(l.denyResolved, to: &p.network.denyResolved)
            for (k, v) in l.hosts { p.network.hosts[k] = v.value }
            if let v = l.maxConnections { p.network.maxConnections = v }

            if let v = l.requireRootOwned { p.binary.requireRootOwned = v }
            if let v = l.rejectWritable { p.binary.rejectWritable = v }
            if let v = l.rejectSetuid { p.binary.rejectSetuid = v }
            for (k, v) in l.pin { p.binary.pin[k] = v.value }

            if let v = l.auditPath { p.audit.path = v.value }
            if let v = l.auditKeyFile { p.audit.keyFile = v.value }
        }
        (p.network.allow, p.network.allowHosts) = allow.rules

        crossCheck(p)
        if let workdirLayer { checkWorkdir(p, setBy: workdirLayer) }
        checkMergedSizes(p)

        if let profile, case .file(let path) = profile.ref {
            switch SeccompProfile.loadCounted(path: path) {
            case .success(let loaded):
                p.seccomp.profile = loaded
            case .failure(let failure):
                diagnostics += failure.diagnostics
                omitted += failure.omitted
            }
        }
        return p
    }

    /// Checks that need the merged result (a key in one file, its conflict in another).
    private mutating func crossCheck(_ p: Policy) {
        if p.network.mode != .egress {
            if !p.network.allow.isEmpty {
                fail("network.allow", "allow rules need network.mode = \"egress\" (mode is \"\(p.network.mode.rawValue)\"); set mode = \"egress\" or remove the rules")
            }
            if !p.network.dns.isEmpty {
                fail("network.dns", "dns servers need network.mode = \"egress\" (mode is \"\(p.network.mode.rawValue)\"); set mode = \"egress\" or remove them")
            }
            if !p.network.allowHosts.isEmpty {
                fail("network.allow", "host rules need network.mode = \"egress\" (mode is \"\(p.network.mode.rawValue)\"); set mode = \"egress\" or remove the rules")
            }
        }
        // With host rules the run's only resolver is the DNS stub; without, there is no stub.
        if !p.network.allowHosts.isEmpty, !p.network.dns.isEmpty {
            fail("network.dns", "host rules make the DNS stub the run's only resolver; move these addresses to network.upstream_dns (the resolvers the stub asks from the host side) or remove them")
        }
        // With host rules the ruleset refuses DNS (53) and DNS over TLS (853) to every
        // address but the stub before any allow rule: a rule listing them would be
        // refused silently (red-team F6a), so it is a load error that says so.
        if !p.network.allowHosts.isEmpty {
            let dnsPorts: Set<UInt16> = [53, 853]
            let rules = p.network.allow.map { ("cidr = \"\($0.cidr)\"", $0.ports) } + p.network.allowHosts.map { ("host = \"\($0.host)\"", $0.ports) }
            for (what, ports) in rules {
                let listed = ports.filter(dnsPorts.contains).sorted()
                guard !listed.isEmpty else { continue }
                fail("network.allow", "the rule { \(what) } lists port \(listed.map(String.init).joinedText(separator: " and ")), which host rules never open: DNS goes only to the DNS stub (its upstream is network.upstream_dns) and DNS over TLS nowhere; remove the port from the rule")
            }
        }
        if p.network.allowHosts.isEmpty {
            if !p.network.upstreamDNS.isEmpty {
                fail("network.upstream_dns", "upstream_dns is for the DNS stub, which only host rules (allow = [{ host = \"NAME\", ports = […] }]) start; add one or remove it")
            }
            if !p.network.denyResolved.isEmpty {
                fail("network.deny_resolved", "deny_resolved filters the DNS stub's answers, which only host rules start; add one or remove it")
            }
        }
        // One path in two of ro/rw/tmpfs/mask has no single meaning: say which to drop.
        let lists: [(String, [PathTemplate])] = [("ro", p.filesystem.ro), ("rw", p.filesystem.rw),
                                                 ("tmpfs", p.filesystem.tmpfs), ("mask", p.filesystem.mask)]
        var owner: [String: String] = [:]
        for (name, list) in lists {
            for t in list {
                // By the path inside: a bind elsewhere occupies its destination.
                if owner[t.inside] == name {
                    fail("filesystem.\(name)", "\"\(t.inside)\" is listed twice in filesystem.\(name) (as a path and as a dst, or as two dst); keep one")
                } else if let first = owner[t.inside] {
                    fail("filesystem.\(name)", "\"\(t.inside)\" is in both filesystem.\(first) and filesystem.\(name); keep it in one (remove an inherited entry with \"!\(t.raw)\")")
                } else {
                    owner[t.inside] = name
                }
            }
        }
    }

    /// `process.workdir` must exist inside: `/`, or at, under or above a path the
    /// filesystem lists show (`ro`, `rw`, `tmpfs`, `unix_sockets`). Paths compare as
    /// written, so a template only matches the same template (`{cwd}/src` is under
    /// `{cwd}`; `/work` is not, even when run from /work): a policy is valid or not
    /// wherever it runs. The planner checks again after expansion (a `?` bind that is
    /// absent, a template that expands elsewhere).
    private mutating func checkWorkdir(_ p: Policy, setBy layer: PolicyLayer) {
        guard let w = p.process.workdir?.raw, w != "/" else { return }
        let fs = p.filesystem
        let shown = (fs.ro + fs.rw + fs.tmpfs + fs.unixSockets).map(\.inside)
        func beneath(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b + "/") }
        if shown.contains(where: { beneath(w, $0) || beneath($0, w) }) { return }
        let message = "\"\(w)\" is outside every mount, so it does not exist inside the sandbox (the command would fail at chdir); name a path at or under an ro, rw or tmpfs entry (they compare as written: \"{cwd}/src\" is under \"{cwd}\", \"/work\" is not), or leave workdir unset (then {cwd} when it is visible, else /); a bind with a dst counts at its dst"
        failAt(layer, TOMLPath.root.key("process").key("workdir"), message)
    }

    /// A diagnostic at a key of one file of the chain, with its line: the file is read
    /// again only on this error path.
    private mutating func failAt(_ layer: PolicyLayer, _ keyPath: TOMLPath, _ message: String) {
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        let text = (try? PolicyFile.read(layer.absolutePath, limit: PolicyLimits.maxFileBytes).get())
            .flatMap { String(utf8Text: $0) } ?? ""
        diagnostics.append(PolicyDiagnostic(file: layer.file, keyPath: keyPath.description,
                                            line: SourceIndex(source: text).line(for: keyPath), message: message))
    }

    /// Lists and tables merged over the `extends` chain stay within the bound each file's
    /// arrays have (`PolicyLimits.maxArrayItems`): every entry costs the planner a
    /// path lookup, a mount or a rule.
    private mutating func checkMergedSizes(_ p: Policy) {
        let sizes: [(String, Int)] = [
            ("process.env.pass", p.process.envPass.count), ("process.env.set", p.process.envSet.count),
            ("filesystem.ro", p.filesystem.ro.count), ("filesystem.rw", p.filesystem.rw.count),
            ("filesystem.tmpfs", p.filesystem.tmpfs.count), ("filesystem.protect", p.filesystem.protect.count),
            ("filesystem.mask", p.filesystem.mask.count), ("filesystem.unix_sockets", p.filesystem.unixSockets.count),
            ("filesystem.socket_scan_skip", p.filesystem.socketScanSkip.count),
            ("landlock.connect_tcp", p.landlock.connectTCP?.count ?? 0), ("landlock.bind_tcp", p.landlock.bindTCP?.count ?? 0),
            ("network.dns", p.network.dns.count), ("network.allow", p.network.allow.count + p.network.allowHosts.count),
            ("network.hosts", p.network.hosts.count), ("binary.pin", p.binary.pin.count),
        ]
        for (key, n) in sizes where n > PolicyLimits.maxArrayItems {
            fail(key, "array length limit exceeded: \(n) entries after merging the extends chain, more than \(PolicyLimits.maxArrayItems)")
        }
    }

    /// A `"!X"` in `network.allow` that matched no rule: the writer's picture of the
    /// inherited rules is wrong, and a rule they meant to close may still be open.
    private mutating func failUnmatched(_ at: KeyLocation, _ edit: AllowEdit) {
        let what: String
        switch edit {
        case .removeCIDR(let c, _): what = "no rule before it has cidr = \"\(c)\""
        case .removeHost(let h, _): what = "no rule before it has host = \"\(h)\""
        default: return
        }
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        diagnostics.append(PolicyDiagnostic(file: at.file, keyPath: at.keyPath, line: at.line,
                                            message: "this removal matches nothing: \(what) (a removal names a rule's cidr or host exactly as written there; `sandbox explain` lists the inherited rules)"))
    }

    private mutating func fail(_ keyPath: String, _ message: String) {
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        diagnostics.append(PolicyDiagnostic(file: rootFile, keyPath: keyPath, message: message))
    }

    /// Appends additions (each value once) and applies `"!X"` removals, in order.
    static func apply<T: Equatable>(_ edits: [ListEdit<T>], to list: inout [T]) {
        for edit in edits {
            switch edit {
            case .add(let v): if !list.contains(v) { list.append(v) }
            case .remove(let v): list.removeAll { $0 == v }
            case .clear: list.removeAll()
            }
        }
    }

    /// A list whose absence means "no restriction" (`socket_families`, `connect_tcp`):
    /// `"!"` makes it absent again; edits start from an empty list when it was.
    static func apply<T: Hashable>(_ setting: Setting<[ListEdit<T>]>, to list: [T]?) -> [T]? {
        guard case .value(let edits) = setting else { return nil }
        var out = list ?? []
        apply(edits, to: &out)
        return out
    }

    // The Hashable forms below do the same in time linear in the list and the edits (a
    // chain of files with thousands of entries each must not take quadratic time); the
    // Equatable forms remain for types that are not Hashable.

    /// `apply(_:to:)` for Hashable values: a set of what is in the list, removals
    /// leave a hole, filled in one pass at the end.
    static func apply<T: Hashable>(_ edits: [ListEdit<T>], to list: inout [T]) {
        guard !edits.isEmpty else { return }
        var slots: [T?] = list
        var position: [T: Int] = [:]
        for (i, v) in list.enumerated() where position[v] == nil { position[v] = i }
        for edit in edits {
            switch edit {
            case .add(let v):
                if position[v] == nil { position[v] = slots.count; slots.append(v) }
            case .remove(let v):
                if let i = position.removeValue(forKey: v) { slots[i] = nil }
            case .clear:
                slots.removeAll(); position.removeAll()
            }
        }
        list = slots.compactMap { $0 }
    }

    /// Paths compare by their text: `"!/lib64"` also removes an inherited `"/lib64?"`, and
    /// re-adding a path replaces its optional marker in place.
    static func apply(_ edits: [ListEdit<PathTemplate>], to list: inout [PathTemplate]) {
        guard !edits.isEmpty else { return }
        var slots: [PathTemplate?] = list
        var position: [String: Int] = [:]
        for (i, v) in list.enumerated() where position[v.raw] == nil { position[v.raw] = i }
        for edit in edits {
            switch edit {
            case .add(let v):
                if let i = position[v.raw] { slots[i] = v } else { position[v.raw] = slots.count; slots.append(v) }
            case .remove(let v):
                if let i = position.removeValue(forKey: v.raw) { slots[i] = nil }
            case .clear:
                slots.removeAll(); position.removeAll()
            }
        }
        list = slots.compactMap { $0 }
    }
}

/// `network.allow` over the `extends` chain: rules in the order first written, each
/// once; a removal drops every rule with its cidr or host. Linear in the rules and the
/// edits (a chain of files with thousands of rules each must not take quadratic time).
struct AllowMerge {
    private enum Rule: Hashable {
        case cidr(AllowRule)
        case host(HostRule)
    }
    private enum Target: Hashable {
        case cidr(CIDR)
        case host(HostPattern)
    }
    private var slots: [Rule?] = []
    private var present: Set<Rule> = []
    /// The slots of the rules each removal target would drop.
    private var byTarget: [Target: [Int]] = [:]

    /// Applies one edit; for a removal that matched nothing, where it was written.
    mutating func apply(_ edit: AllowEdit) -> KeyLocation? {
        switch edit {
        case .clear:
            self = AllowMerge()
        case .cidr(let r):
            add(.cidr(r), target: .cidr(r.cidr))
        case .host(let r):
            add(.host(r), target: .host(r.host))
        case .removeCIDR(let c, let at):
            if !remove(.cidr(c)) { return at }
        case .removeHost(let h, let at):
            if !remove(.host(h)) { return at }
        }
        return nil
    }

    private mutating func add(_ rule: Rule, target: Target) {
        guard present.insert(rule).inserted else { return }
        byTarget[target, default: []].append(slots.count)
        slots.append(rule)
    }

    private mutating func remove(_ target: Target) -> Bool {
        guard let indices = byTarget.removeValue(forKey: target) else { return false }
        for i in indices {
            if let rule = slots[i] { present.remove(rule) }
            slots[i] = nil
        }
        return true
    }

    var rules: ([AllowRule], [HostRule]) {
        var cidrs: [AllowRule] = [], hosts: [HostRule] = []
        for case let rule? in slots {
            switch rule {
            case .cidr(let r): cidrs.append(r)
            case .host(let r): hosts.append(r)
            }
        }
        return (cidrs, hosts)
    }
}
