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
    /// Keyed by the path's bytes: two canonically equal names are two files.
    private let entries = Mutex<[PathText.Key: Entry]>([:])
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
        if let e = entries.withLock({ $0[PathText.Key(path)] }), valid(e) { return e.policy }
        // Loaded once, and cached on the SHA-256 of the exact bytes the loader parsed
        // (`Policy.sourceDigests`, the profile's `sha256`), never on the files read
        // again: a file rewritten meanwhile is then a mismatch at the next request,
        // and loaded again.
        var started = timespec()
        clock_gettime(CLOCK_REALTIME, &started)
        let policy = try RunSteps.loadPolicy(path, relativeTo: cwd, searchPath: searchPath)
        afterLoad?(path)
        var files = zip(policy.sources, policy.sourceDigests).map { (path: $0.0, sha256: $0.1) }
        if let profile = policy.seccomp.profile {
            guard let digest = profile.sha256 else { return policy }
            files.append((profile.source, digest))
        }
        // The directories are stamped after the load: one changed since it began
        // (a file added that a name could now resolve to) is not cached at all. The
        // filesystem's clock is coarse (a tick behind): 50 ms of margin.
        let directories = stamps(policy)
        let since = (started.tv_sec, started.tv_nsec - 50_000_000)
        let quiet = directories.allSatisfy { d in
            [(d.stamp.mtimeSec, d.stamp.mtimeNsec), (d.stamp.ctimeSec, d.stamp.ctimeNsec)].allSatisfy { $0 < since }
        }
        if quiet && files.count == policy.sources.count + (policy.seccomp.profile == nil ? 0 : 1) {
            entries.withLock { m in
                if m.count >= Self.maxEntries { m.removeAll() }
                m[PathText.Key(path)] = Entry(policy: policy, files: files, directories: directories)
            }
        }
        return policy
    }

    /// Tests only: runs between the load and the caching of its result (a file
    /// rewritten here must not be served from the cache).
    nonisolated(unsafe) var afterLoad: ((String) -> Void)?

    private func valid(_ e: Entry) -> Bool {
        e.directories.allSatisfy { Self.stamp($0.path) == $0.stamp }
            && e.files.allSatisfy { Self.sha256(of: $0.path) == $0.sha256 }
    }

    /// The directories a name may be looked up in (a file added there could shadow
    /// one that `extends` names): the search paths and every policy file's directory.
    private func stamps(_ p: Policy) -> [(path: String, stamp: Stamp)] {
        // By bytes (PathText): `lastIndex(of: "/")` passes over a slash a combining
        // mark follows, and a `Set<String>` makes two canonically equal names one.
        var lookedIn: [PathText.Key: String] = [:]
        for dir in p.sources.map(PathText.parent) + searchPath + profileSearchPath { lookedIn[PathText.Key(dir)] = dir }
        var dirs: [(path: String, stamp: Stamp)] = []
        for (_, dir) in lookedIn.sorted(by: { $0.key < $1.key }) {
            guard let s = Self.stamp(dir) else { continue }   // absent: nothing there to shadow
            dirs.append((dir, s))
        }
        return dirs
    }

    private static func sha256(of path: String) -> String? {
        if let builtIn = BuiltIn.contents(of: path) { return Digest.sha256Hex(builtIn) }
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
