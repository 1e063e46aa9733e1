import Foundation
import TOMLKit

/// Reads policy files into a validated `Policy`: parses every file of the `extends`
/// chain, validates each on its own, merges them base-first and applies the
/// defaults. Every problem in every file is reported at once (`PolicyError`).
///
/// Merge rules (Docs/design.md §3): scalars override; lists append, and an entry `"!X"`
/// removes an inherited `X`; tables (`env.set`, `rlimits`, `hosts`, `pin`) merge key
/// by key; `network.allow` rules append. A base reached twice (a diamond) is merged
/// once, at its first position.
public struct PolicyLoader: Sendable {
    /// Directories searched, in order, for `extends = ["NAME"]` and `--policy NAME`.
    public var searchPath: [String]
    /// Directories searched, in order, for `seccomp.profile = "NAME"` (`NAME.json`).
    public var profileSearchPath: [String]

    /// - Parameter profileSearchPath: where named seccomp profiles are looked up;
    ///   nil: `Profiles/seccomp` of the located `DataDirectory`.
    public init(searchPath: [String], profileSearchPath: [String]? = nil) {
        self.searchPath = searchPath
        self.profileSearchPath = profileSearchPath ?? DataDirectory.locate().map { [$0.seccompProfiles] } ?? []
    }

    /// `$SANDBOX_POLICY_PATH` (colon-separated), then the shipped `Policies/`.
    public static func defaultSearchPath() -> [String] {
        defaultSearchPath(environment: ProcessInfo.processInfo.environment, data: DataDirectory.locate())
    }

    static func defaultSearchPath(environment: [String: String], data: DataDirectory?) -> [String] {
        var dirs = (environment["SANDBOX_POLICY_PATH"] ?? "").split(separator: ":").map(String.init)
        if let data { dirs.append(data.policies) }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
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
            return .found(dir.map { Paths.join($0, text) } ?? Paths.normalize(text))
        }
        let looked = searchPath.map { Paths.join($0, text + ".toml") }
        if let hit = looked.first(where: Paths.isFile) { return .found(hit) }
        if looked.isEmpty {
            return .notFound("no policy named \"\(text)\": the policy search path is empty (set SANDBOX_POLICY_PATH or SANDBOX_DATA_DIR, or give a path such as \"./\(text).toml\")")
        }
        return .notFound("no policy named \"\(text)\"; looked for \(looked.joined(separator: ", ")); give a name from the search path or a path such as \"./\(text).toml\"")
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
        let layers = session.order

        var policy: Policy?
        let rootLayer = layers.last(where: { $0.absolutePath == root.absolute })
        if diagnostics.isEmpty, let rootLayer {
            var merger = Merger(rootFile: path)
            let built = merger.build(layers: layers, root: rootLayer,
                                     defaultName: (Paths.basename(path) as NSString).deletingPathExtension)
            diagnostics += merger.diagnostics
            policy = built
        }
        if !diagnostics.isEmpty || policy == nil {
            if diagnostics.isEmpty {
                diagnostics.append(PolicyDiagnostic(file: path, message: "the policy could not be loaded"))
            }
            throw PolicyError(LoadSession.ordered(diagnostics))
        }
        return policy!
    }

    /// Reads and validates one file on its own (no `extends`), for tools and tests.
    func readLayer(_ file: FileRef) -> (PolicyLayer?, [PolicyDiagnostic]) {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: file.absolute))
            guard let s = String(data: data, encoding: .utf8) else {
                return (nil, [PolicyDiagnostic(file: file.display, message: "the file is not valid UTF-8; policy files are UTF-8 TOML")])
            }
            text = s
        } catch {
            let why: String
            if !FileManager.default.fileExists(atPath: file.absolute) {
                why = "no such file"
            } else if Paths.isDirectory(file.absolute) {
                why = "it is a directory"
            } else {
                why = "it cannot be read (\((error as NSError).localizedDescription))"
            }
            return (nil, [PolicyDiagnostic(file: file.display, message: "cannot read policy file: \(why)")])
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            return (nil, [PolicyDiagnostic(file: file.display, line: e.source.begin.line, column: e.source.begin.column,
                                           message: "malformed TOML: \(e.description)")])
        } catch {
            return (nil, [PolicyDiagnostic(file: file.display, message: "malformed TOML: \(error)")])
        }
        let reader = LayerReader(file: file.display, policyDir: Paths.dirname(file.absolute),
                                 index: SourceIndex(source: text), profileDirs: profileSearchPath)
        let layer = reader.read(table, absolutePath: file.absolute)
        return (layer, reader.diagnostics)
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
    /// each file once).
    private struct LoadSession {
        let loader: PolicyLoader
        var diagnostics: [PolicyDiagnostic] = []
        var order: [PolicyLayer] = []
        var done = Set<String>()
        var reportedCycles = Set<[String]>()

        init(loader: PolicyLoader) { self.loader = loader }

        mutating func visit(_ file: FileRef, stack: [FileRef]) {
            let id = file.identity
            if done.contains(id) { return }
            let (layer, found) = loader.readLayer(file)
            diagnostics += found
            guard let layer else { done.insert(id); return }
            let here = stack + [file]
            let dir = Paths.dirname(file.display)
            for (target, keyPath) in layer.extends {
                switch loader.resolveTarget(target, relativeTo: dir) {
                case .notFound(let message):
                    report(file, keyPath, message, layer: layer)
                case .found(let display):
                    let child = FileRef(display: display, absolute: Paths.absolute(display))
                    if !Paths.isFile(child.absolute) {
                        let message = Paths.isDirectory(child.absolute)
                            ? "extends target \"\(target)\" is a directory (\(display)); name a .toml file"
                            : "extends target \"\(target)\" not found: no file \(display)"
                        report(file, keyPath, message, layer: layer)
                        continue
                    }
                    let childID = child.identity
                    if let start = here.firstIndex(where: { $0.identity == childID }) {
                        let cycle = here[start...].map(\.display) + [here[start].display]
                        // Report each cycle once, however many files close it.
                        let key = here[start...].map(\.identity).sorted()
                        if reportedCycles.insert(key).inserted {
                            report(file, keyPath, "extends cycle: " + cycle.joined(separator: " -> "), layer: layer)
                        }
                        continue
                    }
                    visit(child, stack: here)
                }
            }
            done.insert(id)
            order.append(layer)
        }

        private mutating func report(_ file: FileRef, _ keyPath: TOMLPath, _ message: String, layer: PolicyLayer) {
            // The source index is rebuilt only on this (rare) error path.
            let line = (try? String(contentsOfFile: file.absolute, encoding: .utf8)).flatMap {
                SourceIndex(source: $0).line(for: keyPath)
            }
            diagnostics.append(PolicyDiagnostic(file: file.display, keyPath: keyPath.description, line: line, message: message))
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

    init(rootFile: String) { self.rootFile = rootFile }

    mutating func build(layers: [PolicyLayer], root: PolicyLayer, defaultName: String) -> Policy {
        var p = Policy(name: root.name ?? defaultName)
        p.version = 1
        p.sources = layers.map(\.absolutePath)
        var profile: (ref: ProfileRef, file: String, path: TOMLPath?)? = nil

        for l in layers {
            if let v = l.hostname { p.process.hostname = v }
            if let v = l.user { p.process.user = v }
            if let v = l.group { p.process.group = v }
            if let v = l.workdir { p.process.workdir = v }
            Merger.apply(l.envPass, to: &p.process.envPass)
            p.process.envSet.merge(l.envSet) { _, new in new }
            if let v = l.timeoutMs { p.process.timeoutMs = v }
            if let v = l.graceMs { p.process.graceMs = v }
            if let v = l.newSession { p.process.newSession = v }
            if let v = l.hostUID { p.process.hostUID = v }

            Merger.apply(l.ro, to: &p.filesystem.ro)
            Merger.apply(l.rw, to: &p.filesystem.rw)
            Merger.apply(l.tmpfs, to: &p.filesystem.tmpfs)
            Merger.apply(l.protect, to: &p.filesystem.protect)
            Merger.apply(l.mask, to: &p.filesystem.mask)
            Merger.apply(l.unixSockets, to: &p.filesystem.unixSockets)

            if let v = l.landlockMode { p.landlock.mode = v }
            if let v = l.landlockMinABI { p.landlock.minABI = v }
            if let v = l.connectTCP { p.landlock.connectTCP = Merger.appendUnique(p.landlock.connectTCP ?? [], v) }
            if let v = l.bindTCP { p.landlock.bindTCP = Merger.appendUnique(p.landlock.bindTCP ?? [], v) }
            Merger.apply(l.scope, to: &p.landlock.scope)

            if let v = l.seccompProfile { profile = (v, l.file, l.seccompProfilePath) }
            Merger.apply(l.deny, to: &p.seccomp.deny)
            if let v = l.socketFamilies {
                var families = p.seccomp.socketFamilies ?? []
                Merger.apply(v, to: &families)
                p.seccomp.socketFamilies = families
            }
            if let v = l.onViolation { p.seccomp.onViolation = v }

            Merger.apply(l.keep, to: &p.capabilities.keep)

            if let v = l.memory { p.resources.memoryBytes = v }
            if let v = l.swap { p.resources.swapBytes = v }
            if let v = l.pids { p.resources.pids = v }
            if let v = l.cpu { p.resources.cpu = v }
            if let v = l.io { p.resources.ioWeight = v }
            p.resources.rlimits.merge(l.rlimits) { _, new in new }
            Merger.apply(l.bestEffort, to: &p.resources.bestEffort)

            if let v = l.networkMode { p.network.mode = v }
            Merger.apply(l.dns, to: &p.network.dns)
            p.network.allow = Merger.appendUnique(p.network.allow, l.allow)
            p.network.hosts.merge(l.hosts) { _, new in new }

            if let v = l.requireRootOwned { p.binary.requireRootOwned = v }
            if let v = l.rejectWritable { p.binary.rejectWritable = v }
            if let v = l.rejectSetuid { p.binary.rejectSetuid = v }
            p.binary.pin.merge(l.pin) { _, new in new }

            if let v = l.auditPath { p.audit.path = v }
        }

        crossCheck(p)

        if let profile, case .file(let path) = profile.ref {
            do {
                p.seccomp.profile = try SeccompProfile.load(path: path)
            } catch let e as PolicyError {
                diagnostics += e.diagnostics
            } catch {
                diagnostics.append(PolicyDiagnostic(file: profile.file, keyPath: profile.path?.description,
                                                    message: "cannot load seccomp profile \(path): \(error)"))
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
        }
        // One path in two of ro/rw/tmpfs/mask has no single meaning: say which to drop.
        let lists: [(String, [PathTemplate])] = [("ro", p.filesystem.ro), ("rw", p.filesystem.rw),
                                                 ("tmpfs", p.filesystem.tmpfs), ("mask", p.filesystem.mask)]
        var owner: [String: String] = [:]
        for (name, list) in lists {
            for t in list {
                if let first = owner[t.raw] {
                    fail("filesystem.\(name)", "\"\(t.raw)\" is in both filesystem.\(first) and filesystem.\(name); keep it in one (remove an inherited entry with \"!\(t.raw)\")")
                } else {
                    owner[t.raw] = name
                }
            }
        }
    }

    private mutating func fail(_ keyPath: String, _ message: String) {
        diagnostics.append(PolicyDiagnostic(file: rootFile, keyPath: keyPath, message: message))
    }

    /// Appends additions (each value once) and applies `"!X"` removals, in order.
    static func apply<T: Equatable>(_ edits: [ListEdit<T>], to list: inout [T]) {
        for edit in edits {
            switch edit {
            case .add(let v): if !list.contains(v) { list.append(v) }
            case .remove(let v): list.removeAll { $0 == v }
            }
        }
    }

    /// Paths compare by their text: `"!/lib64"` also removes an inherited `"/lib64?"`, and
    /// re-adding a path replaces its optional marker in place.
    static func apply(_ edits: [ListEdit<PathTemplate>], to list: inout [PathTemplate]) {
        for edit in edits {
            switch edit {
            case .add(let v):
                if let i = list.firstIndex(where: { $0.raw == v.raw }) { list[i] = v } else { list.append(v) }
            case .remove(let v):
                list.removeAll { $0.raw == v.raw }
            }
        }
    }

    static func appendUnique<T: Equatable>(_ list: [T], _ more: [T]) -> [T] {
        var out = list
        for v in more where !out.contains(v) { out.append(v) }
        return out
    }
}
