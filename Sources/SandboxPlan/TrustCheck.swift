import FoundationEssentials
import SandboxPolicy
import SandboxVocabulary

/// A host path later runs rely on: the `sandbox` executable, the data directory, the
/// seccomp cache, a policy or profile file. No run may be able to write it.
public struct TrustedPath: Sendable, Equatable {
    /// What it is, as the refusal names it: "the sandbox executable".
    public var what: String
    public var path: String
    public init(what: String, path: String) { self.what = what; self.path = path }

    public static func executable(_ path: String) -> TrustedPath { .init(what: Kind.executable, path: path) }
    public static func policies(_ path: String) -> TrustedPath { .init(what: Kind.policies, path: path) }
    public static func profiles(_ path: String) -> TrustedPath { .init(what: Kind.profiles, path: path) }
    public static func policySearchDirectory(_ path: String) -> TrustedPath { .init(what: Kind.searchDir, path: path) }
    public static func seccompCache(_ path: String) -> TrustedPath { .init(what: Kind.seccompCache, path: path) }

    enum Kind {
        static let executable = "the sandbox executable"
        static let policies = "the data directory's Policies"
        static let profiles = "the data directory's Profiles"
        static let searchDir = "the policy search directory"
        static let seccompCache = "the seccomp cache"
        static let runBase = "the run base"
        static let policyFile = "the policy file"
        static let profileFile = "the seccomp profile"
        static let auditLog = "the audit log"
        static let auditKey = "the audit key file"
    }
}

/// No run can change what a later run trusts, and no bind reaches the host's kernel
/// state or other runs' state.
///
/// - Every bind source (any list) at or under `/proc`, `/sys`, `/dev` or the run base
///   is refused: those are the sandbox's own (`/proc`, `/dev`), the host kernel's
///   knobs (`/sys`), or every run's lock, plan and seccomp cache (the run base).
/// - A writable bind (`rw`, `unix_sockets`; `tmpfs` is private to the run) is refused
///   when it holds, or lies inside, a trusted path: `HostFacts.trusted` (the
///   executable, the data directory, the seccomp cache), the run base, and every
///   policy and profile file the plan was built from. There is no exception for a
///   `protect`ed entry: protect covers only what exists when the plan is made, so a
///   `.sandbox/` policy may have been planted by an earlier run (red-team review).
/// - A policy or profile file with more than one hard link is refused: another link
///   could lie inside a writable path, and writing through it changes this file.
///
/// Both sides are compared as canonical paths (symlinks resolved through the
/// `FileInspector`) and by identity (device and inode of the trusted path and each
/// of its ancestors against the writable source and each of its ancestors), so a
/// path reached through a symlinked directory or a bind-mount alias is still caught.
extension PlanCompiler {
    /// The reserved roots: what is there, and why a bind may not show it.
    static let reservedRoots: [(path: String, why: String)] = [
        ("/proc", "the sandbox mounts its own /proc"),
        ("/sys", "the host kernel's knobs and devices"),
        ("/dev", "the sandbox makes its own minimal /dev"),
    ]

    func checkTrust(_ policy: Policy, binds: [ResolvedBind], runId: String) throws {
        var resolver = CanonicalPaths(files: host.files)
        // Each bind with the policy key that made it, in the order the policy lists
        // them, so the first entry at fault is the one named.
        var named: [(key: String, fromCwd: Bool, bind: ResolvedBind)] = []
        let lists: [(key: String, list: [PathTemplate])] = [
            ("filesystem.ro", policy.filesystem.ro), ("filesystem.rw", policy.filesystem.rw),
            ("filesystem.unix_sockets", policy.filesystem.unixSockets),
        ]
        // By bytes, as every path here: equivalent strings are different names.
        var seen = Set<PathText.Key>()
        for (key, list) in lists {
            for (i, t) in list.enumerated() {
                let path = expandTemplate(t.raw, runId: runId)
                let pathKey = PathText.Key(path)
                guard let bind = binds.first(where: { PathText.Key($0.source) == pathKey }), seen.insert(pathKey).inserted else { continue }
                named.append(("\(key)[\(i)]", t.raw.hasPrefix("{cwd}"), bind))
            }
        }
        for bind in binds where !seen.contains(PathText.Key(bind.source)) { named.append(("filesystem", false, bind)) }

        func shown(_ path: String, _ canonical: String) -> String {
            path == canonical ? path : "\(path) (that is \(canonical))"
        }

        // 1. Reserved roots.
        var reserved = Self.reservedRoots
        if let base = host.runBase { reserved.append((base, "every run's lock, plan and seccomp cache")) }
        for (key, fromCwd, bind) in named {
            let canonical = resolver.canonical(bind.source)
            for root in reserved {
                guard PathText.isBeneath(bind.source, root.path) || PathText.isBeneath(canonical, resolver.canonical(root.path))
                else { continue }
                let advice = fromCwd
                    ? "run sandbox from a project directory, not from under \(root.path)"
                    : "remove it from the policy"
                let place = bind.source == root.path || canonical == root.path ? "is" : "is under"
                throw PlanError(key: key, message: "\(shown(bind.source, canonical)) \(place) \(root.path), which the sandbox reserves (\(root.why)); \(advice)")
            }
        }

        // 2. What later runs trust, outside every writable bind.
        var trusted = host.trusted
        if let base = host.runBase { trusted.append(TrustedPath(what: TrustedPath.Kind.runBase, path: base)) }
        // A built-in file is part of the executable, which is trusted already.
        trusted += policy.sources.filter { !BuiltIn.isBuiltIn($0) }.map { TrustedPath(what: TrustedPath.Kind.policyFile, path: $0) }
        if let profile = policy.seccomp.profile, !BuiltIn.isBuiltIn(profile.source) {
            trusted.append(TrustedPath(what: TrustedPath.Kind.profileFile, path: profile.source))
        }
        // The audit log: a run that could write it could rewrite its own account.
        // Its key: a run that could read it could forge the chain, so no bind at all
        // may show it (read-only ones included, below).
        if let log = policy.audit.path {
            trusted.append(TrustedPath(what: TrustedPath.Kind.auditLog, path: expandTemplate(log.raw, runId: runId)))
        }
        if let key = policy.audit.keyFile {
            trusted.append(TrustedPath(what: TrustedPath.Kind.auditKey, path: expandTemplate(key.raw, runId: runId)))
        }
        let canonicalTrusted = trusted.map { (entry: $0, canonical: resolver.canonical($0.path)) }
        // A name that is not UTF-8 on any of these paths (every bind was resolved by
        // step 1): what the check would compare is another path than the one the
        // kernel opens (red team, session 43: a policy opened through a symlink to
        // such a directory was rewritten by the run).
        if let path = resolver.notText {
            throw PlanError(key: "filesystem", message: "\(path) has a name that is not valid UTF-8 (shown with U+FFFD), on the way to a bind or to a file later runs trust; sandbox compares host paths as text and refuses it. Rename it, or reach the files by a path that is valid UTF-8")
        }

        // Identities: each trusted path and every directory above it (a writable bind
        // of any of them holds it), by device and inode, whatever path names them.
        // `/a`, `/a/b`, … of a path, split at slash bytes as every path here (see
        // `CanonicalPaths`).
        func prefixes(_ canonical: String) -> [String] {
            var out: [String] = []
            var prefix = ""
            for part in PathText.components(canonical) {
                prefix.append("/")
                prefix.append(contentsOf: part)   // not `+ part`: the generic `Sequence` append
                out.append(prefix)
            }
            return out
        }
        func ancestry(_ canonical: String) -> [(path: String, id: FileIdentity)] {
            prefixes(canonical).compactMap { p in host.files.identity(of: p).map { (p, $0) } }
        }
        // Where a canonical path lives: the mount table's answer alone when the
        // resolver found every component and none a symlink (the kinds it asked
        // are this plan's: `PlanFileView`), else realpath(3)'s, which is nil for a
        // missing path and for one it could not resolve (40 symlinks).
        func located(_ canonical: String) -> (device: String, path: String)? {
            let whole = prefixes(canonical).allSatisfy { p in
                switch host.files.kind(of: p) { case nil, .symlink?: false; default: true }
            }
            return whole ? host.files.location(ofResolved: canonical) : host.files.location(of: canonical)
        }
        // Each trusted path's chain and place once, not once per bind (each place is a
        // walk of the mount table).
        let trustedAncestry = canonicalTrusted.map {
            (entry: $0.entry, canonical: $0.canonical, chain: ancestry($0.canonical), location: located($0.canonical))
        }

        for (key, _, bind) in named {
            let w = resolver.canonical(bind.source)
            let wChain = ancestry(w)
            let wLoc = located(w)
            for (entry, t, tChain, tLoc) in trustedAncestry where !bind.readOnly || entry.what == TrustedPath.Kind.auditKey {
                var holds = PathText.isBeneath(t, w)
                var inside = !holds && PathText.isBeneath(w, t)
                if !holds && !inside, let wID = wChain.last?.id, wChain.last?.path == w {
                    // The same objects under other names (a bind-mount alias).
                    holds = tChain.contains { $0.id == wID }
                    if !holds, let tID = tChain.last?.id, tChain.last?.path == t {
                        inside = wChain.contains { $0.id == tID }
                    }
                }
                // The same places on their filesystem, whatever mounts show them (an
                // alias of a subdirectory of the writable path shares no ancestor).
                if !holds && !inside, let a = wLoc, let b = tLoc, a.device == b.device {
                    holds = PathText.isBeneath(b.path, a.path)
                    inside = !holds && PathText.isBeneath(a.path, b.path)
                }
                guard holds || inside else { continue }
                let relation = holds ? "it holds" : "it lies inside"
                if entry.what == TrustedPath.Kind.auditKey {
                    throw PlanError(key: key, message: "\(shown(bind.source, w)) is visible to the command (\(bind.readOnly ? "read-only" : "writable")), and \(relation) \(entry.what) \(t); a run could read the key and forge the audit chain. \(Self.advice(for: entry.what))")
                }
                throw PlanError(key: key, message: "\(shown(bind.source, w)) is writable by the command, and \(relation) \(entry.what) \(t); a run could replace what later runs trust. \(Self.advice(for: entry.what))")
            }
        }

        // 3. A second hard link of a policy, profile or audit file could be anywhere,
        // writable (or, for the key, visible) too. The executor checks the audit files
        // again on the descriptors it opens.
        let linkKeys = [TrustedPath.Kind.policyFile: "extends", TrustedPath.Kind.profileFile: "seccomp.profile",
                        TrustedPath.Kind.auditLog: "audit.path", TrustedPath.Kind.auditKey: "audit.key_file"]
        for (entry, t) in canonicalTrusted {
            // A directory's link count is its subdirectories: only files are asked.
            guard let linkKey = linkKeys[entry.what], host.files.kind(of: t) == .file else { continue }
            if let n = host.files.linkCount(of: t), n > 1 {
                throw PlanError(key: linkKey,
                                message: "\(entry.what) \(t) has \(n) hard links; another link could lie in a path a run can write, and writing through it would change this file. Use a copy with a single link")
            }
        }
    }

    static func advice(for what: String) -> String {
        switch what {
        case TrustedPath.Kind.policyFile, TrustedPath.Kind.profileFile, TrustedPath.Kind.searchDir:
            return "Keep policies and profiles outside every path a run can write (the installed data directory, or a directory only root writes)"
        case TrustedPath.Kind.auditLog, TrustedPath.Kind.auditKey:
            return "Keep the audit log and its key outside every path a run can write, and the key outside every path it can see"
        case TrustedPath.Kind.runBase, TrustedPath.Kind.seccompCache:
            return "The run base holds every run's state; no policy may make it writable"
        default:
            return "Run sandbox from outside the writable paths (install it, see README)"
        }
    }

    /// `Context.expand` without its errors (the entry expanded once already).
    func expandTemplate(_ raw: String, runId: String) -> String {
        Context.normalize(Context.substitute(raw, host: host, runId: runId))
    }
}

/// realpath(3) over a `FileInspector`: symlinks are followed (relative to the
/// directory holding them, at most 40 of them), `..` goes to the parent of what was
/// reached; from the first missing component on, the rest is taken as written.
struct CanonicalPaths {
    let files: any FileInspector
    /// By the path's bytes (see `PlanFileView`: equivalent strings are different names).
    private var cache: [PathText.Key: String] = [:]
    /// The first path asked, or symlink met, whose text holds U+FFFD: a name that is
    /// not UTF-8, decoded lossily, so another path than the kernel's (the trust check
    /// refuses the plan).
    private(set) var notText: String?

    init(files: any FileInspector) { self.files = files }

    /// Split at slash bytes and compared by bytes: a slash followed by a combining
    /// mark is one `Character`, so a split by characters kept `x/\u{301}p` one
    /// component, whose lstat the kernel resolved through the symlink `x` that this
    /// resolver then never followed (red team, session 43).
    mutating func canonical(_ path: String) -> String {
        if let hit = cache[PathText.Key(path)] { return hit }
        if PathText.hasReplacementCharacter(path), notText == nil { notText = path }
        var notText = self.notText
        let result = Self.walk(path, files: files, link: { at, target, followed in
            if followed, PathText.hasReplacementCharacter(target), notText == nil { notText = at }
        }, upPastMissing: { _ in })
        self.notText = notText
        cache[PathText.Key(path)] = result
        return result
    }

    /// realpath(3)'s walk, which the trust check and `GitProtection.real` share:
    /// components split at slash bytes; each symlink met is followed (relative to the
    /// directory holding it, absolute from `/`) up to `maxHops`, past which it is
    /// taken as a plain component; `..` goes to the parent of what was reached; from
    /// the first missing component on, the rest is taken as written. `link` hears of
    /// each symlink (`followed` false past `maxHops`) before it is followed, and
    /// `upPastMissing` of each `..` met after a missing component (`reached`: the path
    /// so far); either may throw to stop the walk.
    static func walk(_ path: String, files: any FileInspector, maxHops: Int = 40,
                     link: (_ at: String, _ target: String, _ followed: Bool) throws -> Void,
                     upPastMissing: (_ reached: String) throws -> Void) rethrows -> String {
        var rest = PathText.components(path)
        var out: [String] = []
        var hops = 0, i = 0
        var missing = false
        while i < rest.count {
            let part = rest[i]
            i += 1
            if part.isEmpty || PathText.same(part, ".") { continue }
            if PathText.same(part, "..") {
                if missing { try upPastMissing("/" + out.joinedText(separator: "/")) }
                if !out.isEmpty { out.removeLast() }
                continue
            }
            if missing { out.append(part); continue }
            let candidate = "/" + (out + [part]).joinedText(separator: "/")
            switch files.kind(of: candidate) {
            case .symlink(let target)?:
                let follow = hops < maxHops
                try link(candidate, target, follow)
                guard follow else { out.append(part); continue }
                hops += 1
                if PathText.isAbsolute(target) { out = [] }
                rest = PathText.components(target) + rest[i...]
                i = 0
            case nil:
                missing = true
                out.append(part)
            default:
                out.append(part)
            }
        }
        return "/" + out.joinedText(separator: "/")
    }
}
