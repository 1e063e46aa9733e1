import FoundationEssentials
import SandboxVocabulary
internal import TOMLKit

/// The policies a name can select (`--policy NAME`, `extends = ["NAME"]`): every
/// `*.toml` of each search directory, built-in ones included, the first of each name
/// winning as the loader's lookup does. For `sandbox policies`, `doctor` and shell
/// completion; nothing here is trusted or validated (`sandbox check` does that).
public struct PolicyCatalog: Sendable {
    public struct Entry: Sendable, Equatable {
        /// What `--policy` takes: the file name without `.toml`.
        public var name: String
        /// The file: a host path, or a built-in one (`builtin:Policies/agent.toml`).
        public var source: String
        /// The first paragraph of the file's leading comment, without `# name — `.
        public var description: String
        /// The file's own `extends` entries, as written.
        public var extends: [String]
        /// Files of the same name later in the search path, which this one overrides.
        public var overrides: [String]
    }

    public var entries: [Entry]

    /// The catalog of `searchPath` (default: `PolicyLoader.defaultSearchPath()`).
    public init(searchPath: [String] = PolicyLoader.defaultSearchPath()) {
        var byName: [String: Entry] = [:]
        var order: [String] = []
        for dir in searchPath {
            for path in PolicyCatalog.policyFiles(in: dir) {
                let name = String(Paths.basename(path).dropLast(".toml".count))
                if byName[name] != nil { byName[name]!.overrides.append(path); continue }
                let (description, extends) = PolicyCatalog.summary(of: path, name: name)
                byName[name] = Entry(name: name, source: path, description: description, extends: extends, overrides: [])
                order.append(name)
            }
        }
        entries = order.sorted().map { byName[$0]! }
    }

    /// The names only, sorted (shell completion).
    public var names: [String] { entries.map(\.name) }

    /// `dir/*.toml` that a name could select: regular files whose name is a policy name.
    static func policyFiles(in dir: String) -> [String] {
        let paths: [String]
        if BuiltIn.isBuiltIn(dir) {
            paths = BuiltIn.files(in: dir)
        } else {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            paths = names.sorted().map { Paths.join(dir, $0) }
        }
        return paths.filter { p in
            let file = Paths.basename(p)
            return file.hasSuffix(".toml") && file.count > ".toml".count && PolicyFile.kind(p) == .regular
        }
    }

    /// The leading comment's first paragraph and the `extends` list; empty when the file
    /// cannot be read or parsed (the catalog lists it anyway: `check` says why).
    static func summary(of path: String, name: String) -> (String, [String]) {
        guard case .success(let bytes) = PolicyFile.read(path, limit: PolicyLimits.maxFileBytes),
              let text = String(utf8Text: bytes) else { return ("", []) }
        // The first paragraph of the leading comment (up to a bare "#" or a non-comment line).
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let words = line.hasPrefix("#") ? line.dropFirst().trimmingBlanks() : ""
            if words.isEmpty { break }
            lines.append(words)
        }
        var description = lines.joinedText(separator: " ")
        if description.count > 160 { description = description.prefix(159) + "…" }
        if !description.isEmpty {
            // "agent — one tool call …": the name is in the NAME column already.
            for dash in [" — ", " - ", ": "] where description.hasPrefix(name + dash) {
                description = String(description.dropFirst(name.count + dash.count))
            }
        }
        var extends: [String] = []
        // The loader's bounds on the raw text come before any parse, here too.
        if case .exceeded = PolicyPrescan.check(bytes) { return (description, []) }
        if let table = try? TOMLTable(string: text), let list = table["extends"]?.array {
            extends = list.compactMap { $0.string }
        }
        return (description, extends)
    }
}
