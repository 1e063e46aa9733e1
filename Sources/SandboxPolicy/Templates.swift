import Glibc
import SandboxVocabulary

/// Path rules for policy files: templates, the optional marker, normalisation.
///
/// `{cwd}`, `{home}`, `{uid}`, `{gid}` and `{run_id}` stay in the `PathTemplate`
/// because their values depend on the invocation; `{policy_dir}` is expanded here
/// because it differs per file of an `extends` chain.
public enum PathTemplates {
    /// Every template a policy path may use.
    public static let allowed = ["cwd", "home", "uid", "gid", "run_id", "policy_dir"]
    /// Templates that stand for an absolute directory and so may start a path.
    public static let roots = ["cwd", "home", "policy_dir"]

    static var allowedList: String { allowed.map { "{\($0)}" }.joinedText(separator: ", ") }
    static let mustBeAbsolute = "must be absolute (start with / or {cwd}, {home}, {policy_dir})"

    /// Validates and normalises one path as written in a policy.
    ///
    /// - Parameters:
    ///   - allowOptional: whether a trailing `?` marks the entry optional; where it is
    ///     not allowed, a trailing `?` is an error (rather than a file name character),
    ///     so a marker is never silently ignored.
    ///   - policyDir: absolute directory of the policy file, substituted for `{policy_dir}`.
    /// - Returns: the template or a message saying what is wrong and what is allowed.
    public static func parse(_ text: String, policyDir: String, allowOptional: Bool) -> Result<PathTemplate, PolicyValueError> {
        var body = text
        var optional = false
        if body.hasSuffix("?") {
            guard allowOptional else {
                return .failure("the optional marker \"?\" is not allowed here; write the path without it")
            }
            optional = true
            body.removeLast()
        }
        if body.isEmpty { return .failure("empty path; \(mustBeAbsolute)") }
        if body.contains("\0") { return .failure("path contains a NUL character") }

        // Templates: only known names, roots only at the start. An ASCII path (every
        // path of the shipped policies) is scanned as bytes, which are its characters;
        // other text as characters (a combining mark after "}" or "/" makes another
        // character than the brace or slash alone).
        let scanned = body.utf8.allSatisfy({ $0 < 0x80 })
            ? templateNames(Array(body.utf8), text: text, brace: (0x7B, 0x7D), slash: 0x2F) { String(decoding: $0, as: UTF8.self) }
            : templateNames(Array(body), text: text, brace: ("{", "}"), slash: "/") { String($0) }
        let names: [(name: String, offset: Int)]
        switch scanned {
        case .success(let found): names = found
        case .failure(let e): return .failure(e)
        }
        let startsWithRoot = names.first.map { $0.offset == 0 && roots.contains($0.name) } ?? false
        guard body.hasPrefix("/") || startsWithRoot else {
            return .failure("\"\(text)\" \(mustBeAbsolute)")
        }

        // Normalise: no "//", no "." components, no trailing "/"; ".." is rejected
        // because it would make the path's meaning depend on what the template expands to
        // and on symlinks.
        var parts: [String] = []
        for component in body.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { return .failure("\"\(text)\" must not contain \"..\" components") }
            parts.append(String(component))
        }
        var normalized: String
        if startsWithRoot {
            normalized = parts.joinedText(separator: "/")
        } else {
            normalized = "/" + parts.joinedText(separator: "/")
        }

        if normalized.hasPrefix("{policy_dir}") {
            if BuiltIn.isBuiltIn(policyDir) {
                return .failure("a built-in policy (\(policyDir)) has no directory on the host, so {policy_dir} cannot be used; write the path out")
            }
            if policyDir.contains("{") || policyDir.contains("}") {
                return .failure("the policy's directory \"\(policyDir)\" contains a brace, so {policy_dir} cannot be used; write the path out")
            }
            let dir = policyDir == "/" ? "" : policyDir
            normalized = dir + normalized.dropFirst("{policy_dir}".count)
            if normalized.isEmpty { normalized = "/" }
        }
        return .success(PathTemplate(normalized, optional: optional))
    }

    /// The templates of a path's `elements` (its bytes or its characters) with their
    /// offsets: only known names; a root template only at the start, followed by "/"
    /// or nothing.
    private static func templateNames<E: Equatable>(_ chars: [E], text: String, brace: (open: E, close: E), slash: E,
                                                    name makeName: (ArraySlice<E>) -> String)
        -> Result<[(name: String, offset: Int)], PolicyValueError> {
        var names: [(name: String, offset: Int)] = []
        var i = 0
        while i < chars.count {
            if chars[i] == brace.open {
                guard let close = chars[i...].firstIndex(of: brace.close) else {
                    return .failure("unclosed \"{\" in \"\(text)\"; templates are \(allowedList)")
                }
                let name = makeName(chars[(i + 1)..<close])
                guard allowed.contains(name) else {
                    return .failure("unknown template \"{\(name)}\"; allowed templates: \(allowedList)")
                }
                names.append((name, i))
                i = close + 1
            } else if chars[i] == brace.close {
                return .failure("unmatched \"}\" in \"\(text)\"; templates are \(allowedList)")
            } else {
                i += 1
            }
        }
        for (name, offset) in names where roots.contains(name) {
            let end = offset + name.count + 2
            if offset != 0 || (end < chars.count && chars[end] != slash) {
                return .failure("{\(name)} stands for a directory and may only start a path, as in \"{\(name)}/sub\"")
            }
        }
        return .success(names)
    }

    /// Validates a `filesystem.protect` entry: a relative name such as `.git` or
    /// `.github/workflows`, matched inside every rw path.
    public static func parseName(_ text: String) -> Result<String, PolicyValueError> {
        let what = "write a name relative to each rw path, such as \".git\" or \".github/workflows\""
        if text.isEmpty { return .failure("empty name; \(what)") }
        if text.contains("\0") { return .failure("name contains a NUL character") }
        if text.hasPrefix("/") { return .failure("\"\(text)\" must be relative; \(what)") }
        if text.contains("{") || text.contains("}") { return .failure("\"\(text)\": templates are not allowed here; \(what)") }
        var parts: [String] = []
        for component in text.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { return .failure("\"\(text)\" must not contain \"..\" components; \(what)") }
            parts.append(String(component))
        }
        if parts.isEmpty { return .failure("\"\(text)\" names no file; \(what)") }
        return .success(parts.joinedText(separator: "/"))
    }
}

/// Lexical path helpers (no file system access, no symlink resolution).
enum Paths {
    /// Removes `.`, empty components and `a/..` pairs; keeps leading `..` of relative paths.
    static func normalize(_ path: String) -> String {
        PathText.isNormalAbsolute(path) ? path : normalizeBySplitting(path)
    }

    /// `normalize` without its fast path: components split as characters, `.` and
    /// empty ones dropped, `a/..` pairs removed.
    static func normalizeBySplitting(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var out: [String] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if let last = out.last, last != ".." { out.removeLast(); continue }
                if absolute { continue }
            }
            out.append(String(c))
        }
        let joined = out.joinedText(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// A built-in `dir` (`BuiltIn`) keeps a relative `path` among the built-in files.
    static func join(_ dir: String, _ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        if BuiltIn.isBuiltIn(dir) { return BuiltIn.join(dir, path) }
        return normalize(dir + "/" + path)
    }

    /// A built-in path is its own absolute form.
    static func absolute(_ path: String) -> String {
        if BuiltIn.isBuiltIn(path) { return path }
        return join(currentDirectory(), path)
    }

    /// The process's working directory (getcwd; FileManager's first use costs a cold
    /// start more than the call).
    static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(cString: buf)
    }

    static func dirname(_ path: String) -> String {
        let n = normalize(path)
        guard let slash = n.lastIndex(of: "/") else { return "." }
        if slash == n.startIndex { return "/" }
        return String(n[..<slash])
    }

    static func basename(_ path: String) -> String {
        let n = normalize(path)
        guard let slash = n.lastIndex(of: "/") else { return n }
        return String(n[n.index(after: slash)...])
    }

    /// The name without its extension, as NSString's `deletingPathExtension`:
    /// `agent.toml` → `agent`, `a.b.` → `a.b`; `.toml` (its only dot first) and `..` stay.
    static func deletingExtension(_ name: String) -> String {
        guard name.count > 1, name != "..", let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    /// The path with symlinks resolved, used to recognise the same file reached twice:
    /// realpath(3), or the path normalised when it cannot be resolved (a missing file
    /// is reported by its read). Not Foundation's URL, whose code was ~0.4 MiB of
    /// every cold run's resident text (Docs/benchmarks.md, session 38).
    static func identity(_ absolutePath: String) -> String {
        if BuiltIn.isBuiltIn(absolutePath) { return absolutePath }
        guard let resolved = realpath(absolutePath, nil) else { return normalize(absolutePath) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isDirectory(_ path: String) -> Bool {
        if BuiltIn.isBuiltIn(path) { return BuiltIn.isDirectory(path) }
        return fileType(path).map { $0 == S_IFDIR } ?? false
    }

    /// Anything but a directory, as FileManager's `fileExists(atPath:isDirectory:)`.
    static func isFile(_ path: String) -> Bool {
        if BuiltIn.isBuiltIn(path) { return BuiltIn.contents(of: path) != nil }
        return fileType(path).map { $0 != S_IFDIR } ?? false
    }

    /// The type bits of what `path` names, symlinks followed (stat), or nil.
    private static func fileType(_ path: String) -> mode_t? {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }
}
