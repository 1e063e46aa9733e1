import Glibc
import SandboxKit
import Synchronization

/// Loaded policies, kept warm by the server: a request reuses the `Policy` a file
/// was parsed into while every input of that load is unchanged — the bytes of each
/// file of the `extends` chain and of the seccomp profile (SHA-256), and the
/// directories names were looked up in (a file added there could shadow one that
/// `extends` names). Anything else is loaded again, as `exec` would load it. The
/// plan is made for each request (it depends on the host as it is now: paths,
/// identities, sockets, the run id); the seccomp filter is cached by the executor.
final class PolicyCache: Sendable {
    private struct Entry {
        var policy: Policy
        var files: [(path: String, sha256: String)]
        var directories: [(path: String, stamp: Stamp)]
    }
    private struct Stamp: Equatable { var dev: UInt64, ino: UInt64, mtimeSec: Int, mtimeNsec: Int, ctimeSec: Int, ctimeNsec: Int }
    private let entries = Mutex<[String: Entry]>([:])
    private let searchPath: [String]
    private let profileSearchPath: [String]
    /// Bounded: a client naming many policy files cannot grow the server.
    static let maxEntries = 64

    init(searchPath: [String]) {
        self.searchPath = searchPath
        profileSearchPath = PolicyLoader(searchPath: searchPath).profileSearchPath
    }

    /// The policy `nameOrPath` names (relative to `cwd`), from the cache when still
    /// valid; errors as `RunSteps.loadPolicy` reports them.
    func load(_ nameOrPath: String, relativeTo cwd: String) throws(ExecError) -> Policy {
        let loader = PolicyLoader(searchPath: searchPath)
        // A name is looked up again on every request (cheap): the cache is keyed by
        // the file it resolves to now.
        guard let path = try? loader.resolve(nameOrPath: nameOrPath, relativeTo: cwd) else {
            return try RunSteps.loadPolicy(nameOrPath, relativeTo: cwd, searchPath: searchPath)
        }
        if let e = entries.withLock({ $0[path] }), valid(e) { return e.policy }
        // Loaded twice around taking the inputs' fingerprints: cached only if both
        // loads agree, so a file changed meanwhile is never paired with a stale hash.
        let first = try RunSteps.loadPolicy(path, relativeTo: cwd, searchPath: searchPath)
        let inputs = fingerprint(first)
        let policy = try RunSteps.loadPolicy(path, relativeTo: cwd, searchPath: searchPath)
        if let inputs, policy == first {
            entries.withLock { m in
                if m.count >= Self.maxEntries { m.removeAll() }
                m[path] = Entry(policy: policy, files: inputs.files, directories: inputs.directories)
            }
        }
        return policy
    }

    private func valid(_ e: Entry) -> Bool {
        e.directories.allSatisfy { Self.stamp($0.path) == $0.stamp }
            && e.files.allSatisfy { Self.sha256(of: $0.path) == $0.sha256 }
    }

    private func fingerprint(_ p: Policy) -> (files: [(path: String, sha256: String)], directories: [(path: String, stamp: Stamp)])? {
        var files: [(String, String)] = []
        for path in p.sources + (p.seccomp.profile.map { [$0.source] } ?? []) {
            guard let h = Self.sha256(of: path) else { return nil }
            files.append((path, h))
        }
        var dirs: [(String, Stamp)] = []
        let lookedIn = Set(p.sources.map { String($0[..<($0.lastIndex(of: "/") ?? $0.endIndex)]) } + searchPath + profileSearchPath)
        for dir in lookedIn.sorted() {
            guard let s = Self.stamp(dir) else { continue }   // absent: nothing there to shadow
            dirs.append((dir, s))
        }
        return (files, dirs)
    }

    private static func sha256(of path: String) -> String? {
        guard let bytes = try? AppendOnlyFile.contents(of: path) else { return nil }
        return Digest.sha256Hex(bytes)
    }

    private static func stamp(_ path: String) -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Stamp(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), mtimeSec: st.st_mtim.tv_sec, mtimeNsec: st.st_mtim.tv_nsec,
                     ctimeSec: st.st_ctim.tv_sec, ctimeNsec: st.st_ctim.tv_nsec)
    }
}
