import SandboxPolicy
import SandboxVocabulary

/// Unix sockets under `ro` binds are hidden (issue 12, item 4).
///
/// A read-only mount does not stop `connect(2)`: the kernel checks write permission
/// on the socket inode and ignores the mount's flags, so an `ro` bind of `/run` would
/// hand the command every world-connectable socket there (D-Bus, the journal, …) and,
/// with `host_uid = "invoker"`, root's own (`docker.sock`). Landlock cannot refuse a
/// connect before ABI 9 (`LANDLOCK_ACCESS_FS_RESOLVE_UNIX`, not handled by this build).
/// So, when the plan is made, every `ro` bind is searched (`FileInspector.unixSockets`)
/// and each socket found becomes a `mask` step (an empty mode-000 file over it),
/// unless it is at or beneath a `unix_sockets` entry (bound read-write on top, so it
/// is not searched at all). An `ro` entry that is itself a socket is refused.
///
/// Cost is bounded, never cut short: the search reads at most
/// `filesystem.socket_scan_limit` directory entries per plan; a plan that needs more
/// is refused (125) naming the bind. Trees listed in `filesystem.socket_scan_skip`
/// are not searched: the policy vouches that nothing binds a socket there (base.toml
/// lists the package-managed `/usr` and its merged-usr aliases, which no cache could
/// make cheap enough — Docs/policy-reference.md, "Unix sockets under ro binds").
enum SocketScan {
    /// Each mask is a mount in the child; more sockets than this refuse the plan.
    static let maxSockets = 1024

    static func masks(policy: Policy, files: any FileInspector, binds: [ResolvedBind], destinations: [String],
                      expand: (PathTemplate, String) throws -> String,
                      notApplied: inout [String]) throws -> [MountStep] {
        let fs = policy.filesystem
        var skip: [String] = []
        for (i, t) in fs.socketScanSkip.enumerated() { skip.append(try expand(t, "filesystem.socket_scan_skip[\(i)]")) }
        // Host paths by their bytes (PathText): `String` comparison merges canonically
        // equivalent names, which are different files, and one of two such sockets
        // went unmasked (red team, session 37).

        // The ro binds (not mirrored symlinks, not skipped optional ones), with their keys:
        // searched on the host (`path`, the source), hidden inside (`inside`, the
        // destination, which differs for a bind with a dst).
        var roots: [(path: String, inside: String, key: String)] = []
        for (i, t) in fs.ro.enumerated() {
            let path = try expand(t, "filesystem.ro[\(i)]")
            guard let bind = binds.first(where: { PathText.same($0.source, path) && $0.readOnly }) else { continue }
            if skip.contains(where: { PathText.isBeneath(path, $0) }) { continue }
            roots.append((path, bind.destination, "filesystem.ro[\(i)]"))
        }
        if roots.isEmpty { return [] }

        // Every other mount destination covers what the host has there: its own bind
        // (a nested ro bind is searched as a root of its own), a tmpfs, a
        // unix_sockets bind, a mirrored link. Roots themselves are never skipped.
        // Pruning the search by those places is right only when every root shows the
        // host at its own path: with a bind elsewhere, a host path covered at its own
        // place may still be shown under the other's destination, so then only the
        // trees socket_scan_skip vouches for are left out, and each socket is judged
        // where each root shows it (below).
        let rootPaths = Set(roots.map(\.path))
        let rootKeys = Set(roots.map { PathText.Key($0.path) })
        let elsewhere = roots.contains { !PathText.same($0.inside, $0.path) }
        let covered = elsewhere ? Set(skip) : Set(destinations).subtracting(rootPaths).union(skip)
        guard let found = files.unixSockets(under: roots.map(\.path), skipping: covered.union(rootPaths),
                                            limit: fs.socketScanLimit) else {
            notApplied.append("filesystem.ro: not searched for unix sockets (this host's FileInspector cannot list directories); a socket under an ro bind stays connectable")
            return []
        }
        /// The innermost root showing `path`.
        func root(of path: String) -> (path: String, inside: String, key: String)? {
            roots.filter { PathText.isBeneath(path, $0.path) }.max(by: { $0.path.utf8.count < $1.path.utf8.count })
        }
        func key(of path: String) -> String { root(of: path)?.key ?? "filesystem.ro" }
        if let root = found.incompleteRoot {
            let why = found.incompleteReason ?? "incomplete"
            let raise = found.entries > fs.socketScanLimit ? ", raise filesystem.socket_scan_limit (now \(fs.socketScanLimit))" : ""
            throw PlanError(key: key(of: root), message: "\(root) cannot be searched for unix sockets (\(why)). A socket under an ro bind stays connectable, so each one is hidden, and the search is never cut short. List the tree in filesystem.socket_scan_skip if nothing binds a socket there\(raise), or bind a smaller tree")
        }
        // Each socket is hidden where each root shows it, unless a mount nested in that
        // root's destination covers the place (the innermost mount decides what is seen).
        var sockets: [String] = []
        var seen = Set<PathText.Key>()
        var byBytes: [PathText.Key: String] = [:]
        for s in found.sockets { byBytes[PathText.Key(s)] = s }
        for (_, s) in byBytes.sorted(by: { $0.key < $1.key }) {
            if rootKeys.contains(PathText.Key(s)) {
                throw PlanError(key: key(of: s), message: "\(s) is a unix socket; a read-only bind does not stop connect(2) to it. List it in filesystem.unix_sockets to let the command connect, or remove it")
            }
            for r in roots where PathText.isBeneath(s, r.path) {
                let rest = String(decoding: s.utf8.dropFirst(r.path.utf8.count), as: UTF8.self)
                let at = PathText.same(r.inside, r.path) ? s : (r.inside == "/" ? "" : r.inside) + rest
                let nested = destinations.contains { !PathText.same($0, r.inside) && PathText.isBeneath($0, r.inside) && PathText.isBeneath(at, $0) }
                if !nested, seen.insert(PathText.Key(at)).inserted { sockets.append(at) }
            }
        }
        if sockets.count > maxSockets {
            throw PlanError(key: key(of: found.sockets.sorted()[0]), message: "\(sockets.count) unix sockets under the ro binds, more than the \(maxSockets) the sandbox hides (each is a mount); bind a smaller tree or list it in filesystem.socket_scan_skip")
        }
        return sockets.map {
            MountStep(kind: .mask, destination: $0, readOnly: true, optional: true, origin: "filesystem.ro (unix socket)")
        }
    }
}
