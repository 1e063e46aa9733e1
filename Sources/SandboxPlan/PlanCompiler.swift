import FoundationEssentials
import SandboxPolicy
import SandboxVocabulary

/// Policy + invocation + host facts → RunPlan. Pure: the only outside input is
/// `HostFacts` (including its `FileInspector`), so the same inputs always give the
/// same plan and digest.
public struct PlanCompiler {
    public let host: HostFacts

    public init(host: HostFacts) { self.host = host }

    /// - Parameter digest: compute `plan.digest` now (the default). `exec` passes false
    ///   and lets the executor compute it while the child builds its root: the child
    ///   does not need it, and it is the most expensive part of compiling.
    public func compile(_ policy: Policy, argv: [String], runId: String, digest: Bool = true) throws -> RunPlan {
        // One view of the host's files for this plan (PlanFileView).
        var viewed = host
        viewed.files = PlanFileView(host.files)
        return try PlanCompiler(host: viewed).compileInView(policy, argv: argv, runId: runId, digest: digest)
    }

    private func compileInView(_ policy: Policy, argv: [String], runId: String, digest: Bool) throws -> RunPlan {
        guard !argv.isEmpty, !argv[0].isEmpty else {
            throw PlanError(key: "argv", message: "no command given (usage: sandbox exec --policy P -- CMD ARGS…)")
        }
        guard RunID.isValid(runId) else {
            throw PlanError(key: "run_id", message: "\"\(runId)\" is not a valid run id (\(RunID.rule))")
        }
        try PlanCompiler.checkNetwork(policy, rootless: host.invokerUID != 0)
        // The planner compares host paths as text; a name that is not UTF-8 reached it
        // decoded with U+FFFD in place of its bytes, another (missing) path, so the
        // protects under it were left out and the trust check looked elsewhere while
        // the executor bound the real directory by its descriptor (red team, session
        // 43: `.git/hooks` writable under `agent`). Refused, as is a name that holds
        // U+FFFD itself (the two cannot be told apart).
        if PathText.hasReplacementCharacter(host.cwd) {
            throw PlanError(key: "cwd", message: "the working directory \(host.cwd) has a name that is not valid UTF-8 (shown with U+FFFD); sandbox compares host paths as text and refuses such a directory. Run from a directory whose path is valid UTF-8")
        }
        let ctx = Context(policy: policy, host: host, runId: runId)
        let isolation = try ctx.chooseIsolation()
        let nested = isolation?.mode == .nested
        if nested { try ctx.checkNested() }   // NestedPlan.swift
        var notApplied: [String] = []

        // Fail closed: the host's addresses are what a broad allow rule must not open.
        if policy.network.mode == .egress, let why = host.hostAddressesError {
            throw PlanError(key: "network.mode", message: "\"egress\" needs the host's own addresses, which could not be read (\(why)); they keep broad allow rules off the host. Try again")
        }
        // Rendered once: the mount list and the Landlock rules need its files too.
        var network = try NetworkRules.plan(policy.network, hostAddresses: host.hostAddresses,
                                            hostResolvers: host.hostResolvers)
        // A policy that binds the host's /etc or /etc/hosts and names no hosts of its
        // own keeps the host's file.
        if policy.network.hosts.isEmpty,
           (policy.filesystem.ro + policy.filesystem.rw).contains(where: { $0.raw == "/etc" || $0.raw == "/etc/hosts" }) {
            network.hosts = nil
        }
        var process = try ctx.processPlan(argv: argv)
        if nested {
            // No user namespace to map another identity: the invoker's own.
            process.userNamespace = nil
            process.hostUID = .invoker
            process.uid = host.invokerUID
            process.gid = host.invokerGID
        }
        // The trust checks (TrustCheck.swift) run before the search for sockets under
        // ro binds: a reserved path is refused as such, not after (or as) a walk of
        // /sys that may pass the search's limit.
        let (allMounts, binds) = try ctx.mountPlan(network: network, notApplied: &notApplied,
                                                    beforeSocketScan: { try checkTrust(policy, binds: $0, runId: runId) })
        var mounts = allMounts
        var landlock = try ctx.landlockPlan(binds: binds, network: network, notApplied: &notApplied)
        var gaps: [NestedGap: String] = [:]
        if nested {
            (mounts, gaps) = try ctx.nestedMounts(allMounts, abi: landlock.abi)
            landlock = ctx.nestedLandlock(landlock, binds: binds)
        }
        if policy.process.workdir != nil { try Context.checkWorkdir(process.workdir, mounts: mounts) }
        let seccomp = try ctx.seccompPlan(nested: nested ? ctx.nestedSeccomp() : nil)
        let capabilities = try ctx.capabilityPlan()
        let resources = ctx.resourcePlan()
        // Allowed, but unreachable until the bridge routes IPv6: say so in the result.
        let v6 = policy.network.allow.filter { !$0.cidr.address.isV4 }.map(\.cidr.description)
            + policy.network.dns.filter { !$0.isV4 }.map(\.description)
        if policy.network.mode == .egress && !v6.isEmpty {
            notApplied.append("network: IPv6 destinations have no route yet (the bridge is IPv4-only): \(v6.joinedText(separator: ", "))")
        }
        let binary = BinaryPlan(
            requireRootOwned: policy.binary.requireRootOwned, rejectWritable: policy.binary.rejectWritable,
            rejectSetuid: policy.binary.rejectSetuid, pin: policy.binary.pin)
        let audit = AuditPlan(path: try policy.audit.path.map { try ctx.expand($0, key: "audit.path") },
                              keyFile: try policy.audit.keyFile.map { try ctx.expand($0, key: "audit.key_file") })

        var plan = RunPlan(
            runId: runId,
            policy: PolicyInfo(name: policy.name, sources: policy.sources, digest: policy.digest),
            host: HostInfo(arch: host.arch, kernel: host.kernelRelease, landlockABI: host.landlockABI,
                           invokerUID: host.invokerUID, invokerGID: host.invokerGID,
                           rootless: host.invokerUID != 0),
            process: process, mounts: mounts, landlock: landlock, seccomp: seccomp,
            capabilities: capabilities, resources: resources, network: network,
            binary: binary, audit: audit, notApplied: notApplied, digest: nil)
        if policy.filesystem.protect.contains(".git") { plan.reportCreated = [".git"] }
        if let isolation {
            plan.isolation = IsolationPlan(requested: policy.process.isolation, mode: isolation.mode,
                                           reason: isolation.reason, layers: [],
                                           accepted: policy.process.nestedWithout.sorted())
            if nested {
                let layers = ctx.nestedLayers(plan: plan, gaps: gaps,
                                              droppedMounts: allMounts.filter { $0.kind != .bind && $0.kind != .symlink })
                plan.isolation?.layers = layers
            }
        }
        if digest { plan.digest = try PlanDigest.digest(of: plan) }
        return plan
    }
}

extension PlanCompiler {
    /// What the network section needs from the invoker and the other fences.
    static func checkNetwork(_ policy: Policy, rootless: Bool) throws {
        let net = policy.network
        if rootless && net.mode == .egress {
            throw PlanError(key: "network.mode", message: "\"egress\" needs a root invoker: the veth pair, the bridge and the host's forwarding rules cannot be made from an unprivileged user namespace; use \"none\" or \"loopback\", or run as root")
        }
        if net.mode == .egress, let cap = policy.capabilities.keep.first(where: { ["net_admin", "net_raw"].contains($0) }) {
            throw PlanError(key: "capabilities.keep", message: "\"\(cap)\" would let the command change or bypass its own egress firewall; egress runs cannot keep it")
        }
    }
}

/// A bind mount as resolved for the plan (Landlock derives its rules from these).
struct ResolvedBind {
    var source: String
    var destination: String
    var readOnly: Bool
    var isDirectory: Bool
}

struct Context {
    let policy: Policy
    let host: HostFacts
    let runId: String

    // MARK: Paths

    func expand(_ template: PathTemplate, key: String) throws -> String {
        let s = Self.substitute(template.raw, host: host, runId: runId)
        guard s.hasPrefix("/") else {
            throw PlanError(key: key, message: "\"\(template.raw)\" expands to \"\(s)\", which is not an absolute path")
        }
        return Context.normalize(s)
    }

    /// A path template's variables replaced by this host's values (not normalized,
    /// not checked): the one substitution `expand` and the trust check share.
    static func substitute(_ raw: String, host: HostFacts, runId: String) -> String {
        // Most paths name no variable; the rest are replaced one variable after the
        // other, in this order, as before (a value holding a later name is replaced
        // again). Byte-wise, without Foundation: the names are ASCII.
        guard raw.utf8.contains(UInt8(ascii: "{")) else { return raw }
        var s = raw
        let values: [(String, String)] = [
            ("{cwd}", host.cwd), ("{home}", host.home), ("{uid}", String(host.invokerUID)),
            ("{gid}", String(host.invokerGID)), ("{run_id}", runId),
        ]
        for (name, value) in values { s = replacingAll(name, with: value, in: s) }
        return s
    }

    /// Every occurrence of `name` in `text` replaced by `value`, left to right, matched
    /// byte for byte.
    static func replacingAll(_ name: String, with value: String, in text: String) -> String {
        let needle = Array(name.utf8), hay = Array(text.utf8)
        guard !needle.isEmpty, hay.count >= needle.count else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(hay.count)
        var i = 0, changed = false
        while i < hay.count {
            if hay[i] == needle[0], i + needle.count <= hay.count, hay[i..<(i + needle.count)].elementsEqual(needle) {
                out.append(contentsOf: value.utf8); i += needle.count; changed = true
            } else {
                out.append(hay[i]); i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }

    static func normalize(_ path: String) -> String {
        if PathText.isNormalAbsolute(path) { return path }
        var parts: [Substring] = []
        for p in path.split(separator: "/") where p != "." { parts.append(p) }
        return "/" + parts.joined(separator: "/")
    }

    // MARK: Process

    func processPlan(argv: [String]) throws -> ProcessPlan {
        let uid: UInt32
        switch policy.process.user {
        case .invoker: uid = host.invokerUID
        case .id(let n): uid = n
        }
        let gid: UInt32
        switch policy.process.group {
        case nil:
            if case .id(let n) = policy.process.user { gid = n } else { gid = host.invokerGID }
        case .invoker?: gid = host.invokerGID
        case .id(let n)?: gid = n
        }

        var env: [String: String] = [:]
        for name in policy.process.envPass { if let v = host.environment[name] { env[name] = v } }
        for (k, v) in policy.process.envSet { env[k] = v }
        let defaultPath = "/usr/local/bin:/usr/bin:/bin"
        if env["PATH"] == nil { env["PATH"] = defaultPath }
        let searchPath = env["PATH"] ?? defaultPath

        let workdir: String
        if let w = policy.process.workdir {
            workdir = try expand(w, key: "process.workdir")
        } else {
            let cwd = Context.normalize(host.cwd)
            // Only a bind shows the host's directory (under a tmpfs it does not exist),
            // at its destination when it has one: the innermost bind holding the cwd.
            let holding = (policy.filesystem.ro + policy.filesystem.rw)
                .compactMap { t in (try? expand(t, key: "")).map { (source: $0, inside: t.destination ?? $0) } }
                .filter { PathText.isBeneath(cwd, $0.source) }
                .max { $0.source.count < $1.source.count }
            if let b = holding {
                workdir = PathText.same(cwd, b.source) ? b.inside
                    : Context.normalize(b.inside + "/" + PathText.remainder(of: cwd, under: b.source))
            } else {
                workdir = "/"
            }
        }

        let rootless = host.invokerUID != 0
        let userns = rootless
            ? UserNamespacePlan(uidMap: "\(uid) \(host.invokerUID) 1\n", gidMap: "\(gid) \(host.invokerGID) 1\n")
            : nil

        let rlimits = policy.resources.rlimits.keys.sorted().map { r -> RlimitPlan in
            let v: UInt64
            switch policy.resources.rlimits[r]! {
            case .unlimited: v = UInt64.max
            case .value(let n): v = n
            }
            return RlimitPlan(name: r.rawValue, resource: r.number, soft: v, hard: v)
        }

        var plan = ProcessPlan(
            argv: argv, env: env.keys.sorted().map { "\($0)=\(env[$0]!)" }, searchPath: searchPath,
            workdir: workdir, uid: uid, gid: gid, hostname: policy.process.hostname,
            newSession: policy.process.newSession, timeoutMs: policy.process.timeoutMs,
            graceMs: policy.process.graceMs, userNamespace: userns, rlimits: rlimits)
        // Rootless runs have no uids but the invoker's to map (no subordinate ids).
        plan.hostUID = !rootless && policy.process.hostUID == .own ? .own : .invoker
        return plan
    }

    /// The loader compared `process.workdir` with the mount lists as written; after
    /// expansion it must still be at, under or above a place the plan mounts (an
    /// optional bind whose source is absent mounts nothing), else the child's chdir
    /// fails after the whole sandbox was built.
    static func checkWorkdir(_ workdir: String, mounts: [MountStep]) throws {
        let kinds: Set<MountKind> = [.bind, .tmpfs, .proc, .dev, .symlink]
        let places = mounts.filter { kinds.contains($0.kind) }.map(\.destination)
        if workdir == "/" || places.contains(where: { PathText.isBeneath(workdir, $0) || PathText.isBeneath($0, workdir) }) { return }
        throw PlanError(key: "process.workdir", message: "\(workdir) is outside every mount of this plan, so it does not exist inside the sandbox; name a path at or under a bind or tmpfs that is mounted here (an optional \"?\" entry whose host path is absent mounts nothing)")
    }

    // MARK: Mounts

    /// The private root, in the order the child applies it: the listed paths from the
    /// outermost in (so a parent never covers a child), then /proc and /dev, then
    /// `protect` (after the rw binds it narrows), then `mask` (last: nothing may cover
    /// a mask).
    func mountPlan(network net: NetworkPlan, notApplied: inout [String],
                   beforeSocketScan: ([ResolvedBind]) throws -> Void = { _ in }) throws -> ([MountStep], [ResolvedBind]) {
        struct Entry { var dest: String; var step: MountStep; var bind: ResolvedBind? }
        // Keyed by bytes (PathText): `String` keys merge canonically equal names the
        // kernel tells apart.
        var entries: [PathText.Key: Entry] = [:]
        // Host path bound → the entry that binds it. A source is bound once: the trust
        // checks, the socket masks and the git-indirection protects each look a bind up
        // by its source, so a second bind of it (another dst, or `{cwd}` beside its
        // literal path) would be checked at one place and open at the other.
        var boundSources: [PathText.Key: String] = [:]
        let reserved = ["/proc", "/dev"]

        func add(_ list: [PathTemplate], key: String, make: (String, PathTemplate) throws -> Entry?) throws {
            for (i, t) in list.enumerated() {
                let path = try expand(t, key: "\(key)[\(i)]")
                if path == "/" {
                    throw PlanError(key: "\(key)[\(i)]", message: "\"\(t.raw)\" is / here; the sandbox builds its own root and a bind of the host's / would cover it. List the directories the command needs (run from a project directory, not /)")
                }
                // A bind with a destination occupies the destination inside.
                let inside = t.destination ?? path
                if let r = [path, inside].first(where: { p in reserved.contains { PathText.isBeneath(p, $0) } }) {
                    throw PlanError(key: "\(key)[\(i)]", message: "\(r) is provided by the sandbox itself (a private /proc and a minimal /dev); remove it from the policy")
                }
                if let existing = entries[PathText.Key(inside)] {
                    throw PlanError(key: "\(key)[\(i)]", message: "\(inside) is also listed in \(existing.step.origin); a path may appear in one list only")
                }
                guard let e = try make(path, t) else { continue }
                if e.bind != nil, e.step.kind == .bind, let source = e.step.source {
                    if let other = boundSources[PathText.Key(source)] {
                        throw PlanError(key: "\(key)[\(i)]", message: "\(source) is already bound by \(other); a host path may be bound at one place only (one ro or rw entry, one dst) — its trust checks, socket masks and protects follow that one bind")
                    }
                    boundSources[PathText.Key(source)] = "\(e.step.origin) at \(e.dest)"
                }
                entries[PathText.Key(inside)] = e
            }
        }

        let cwd = Context.normalize(host.cwd)
        func bindEntry(_ path: String, _ t: PathTemplate, readOnly: Bool, origin: String) throws -> Entry? {
            // `path` is the host's; `dest` where the command sees it (the same unless the
            // entry names a dst). Everything about the source (its identity, the cwd,
            // the trust checks) is about `path`.
            let dest = t.destination ?? path
            // The working directory itself is the inode the invoker runs in (opened by
            // the supervisor from its cwd fd), whatever the path names by now.
            // By bytes: a name only equivalent to the cwd's (the Kelvin sign for `K`) is
            // another directory, which must not get the cwd's identity (red team,
            // session 43: the run had the cwd bound writable under the twin's checks).
            if PathText.same(path, cwd), let id = host.cwdIdentity {
                var step = MountStep(kind: .bind, source: path, destination: dest, readOnly: readOnly, origin: origin)
                step.sourceIdentity = id
                step.cwdRelative = ""
                return Entry(dest: dest, step: step,
                             bind: ResolvedBind(source: path, destination: dest, readOnly: readOnly, isDirectory: true))
            }
            func located(_ step: MountStep) -> MountStep {
                var step = step
                step.sourceIdentity = host.files.identity(of: path)
                if host.cwdIdentity != nil, cwd != "/", PathText.isBeneath(path, cwd) {
                    step.cwdRelative = PathText.remainder(of: path, under: cwd)
                }
                return step
            }
            switch host.files.kind(of: path) {
            case nil:
                if t.optional { return nil }
                // Kept: the child reports the missing source with the path and errno.
                return Entry(dest: dest, step: MountStep(kind: .bind, source: path, destination: dest,
                                                         readOnly: readOnly, origin: origin),
                             bind: ResolvedBind(source: path, destination: dest, readOnly: readOnly, isDirectory: true))
            case .symlink? where t.destination != nil:
                // A mirrored link at another place would point elsewhere (a relative
                // target), and a bind would follow it: neither is what was written.
                throw PlanError(key: origin, message: "\(path) is a symlink; a bind with a dst needs the real directory or file as its src")
            case .symlink(let target)?:
                // Mirror the link (e.g. /lib -> usr/lib on merged-/usr systems); what it
                // points to is visible only if listed itself.
                return Entry(dest: path, step: MountStep(kind: .symlink, source: target, destination: path,
                                                         readOnly: true, origin: origin), bind: nil)
            case let kind?:
                return Entry(dest: dest, step: located(MountStep(kind: .bind, source: path, destination: dest,
                                                                 readOnly: readOnly, optional: t.optional, origin: origin)),
                             bind: ResolvedBind(source: path, destination: dest, readOnly: readOnly,
                                                isDirectory: kind == .directory))
            }
        }

        try add(policy.filesystem.ro, key: "filesystem.ro") { try bindEntry($0, $1, readOnly: true, origin: "filesystem.ro") }
        try add(policy.filesystem.rw, key: "filesystem.rw") { try bindEntry($0, $1, readOnly: false, origin: "filesystem.rw") }
        try add(policy.filesystem.unixSockets, key: "filesystem.unix_sockets") {
            try bindEntry($0, $1, readOnly: false, origin: "filesystem.unix_sockets")
        }
        try add(policy.filesystem.tmpfs, key: "filesystem.tmpfs") { path, _ in
            Entry(dest: path, step: MountStep(kind: .tmpfs, destination: path, readOnly: false,
                                              options: "mode=1777", origin: "filesystem.tmpfs"), bind: nil)
        }

        // Shallowest first, then by path; each depth counted once, not in every
        // comparison (the split allocated: 3 % of a server's CPU).
        let keyed: [(depth: Int, entry: Entry)] = entries.values.map { ($0.dest.split(separator: "/").count, $0) }
        let ordered: [Entry] = keyed.sorted { a, b in
            a.depth != b.depth ? a.depth < b.depth : a.entry.dest < b.entry.dest
        }.map { $0.entry }
        // Every bind source is opened by the supervisor with no symlink on its path
        // and checked against `sourceIdentity` (Executor.openBindSources), so nested
        // binds need nothing more here.
        var steps = ordered.map(\.step)
        steps.append(MountStep(kind: .proc, destination: "/proc", readOnly: false, origin: "builtin"))
        steps.append(MountStep(kind: .dev, destination: "/dev", readOnly: false, origin: "builtin"))

        // In-memory files before protect and mask, so a mask can still cover them.
        for (file, origin) in [(InMemoryFile.resolvConf, "network.dns"), (.hosts, "network.hosts")] where net.text(of: file) != nil {
            steps.append(MountStep(kind: .file, source: file.rawValue, destination: file.destination,
                                   readOnly: true, origin: origin))
        }

        let binds = ordered.compactMap(\.bind)
        // Directories between a writable bind and a nested protect/mask target are
        // pinned (bound onto themselves): otherwise a run could rename a parent away,
        // so the next run finds nothing to protect, write there, and rename it back.
        // By bytes (red team, session 45): in a `Set<String>`, `é` and `e` with a
        // combining accent are one member, so of two such directories only the first
        // was pinned, and the command renamed the other away, hooks path and all.
        var pinned = Set<PathText.Key>()
        // Protect and pin look at the host (the bind's source); their steps name the
        // place inside (its destination, which differs for a bind with a dst).
        let writable = binds.filter { !$0.readOnly && $0.isDirectory }
        func pinParents(of path: String, under b: ResolvedBind, origin: String = "filesystem.protect") {
            var prefix = b.source
            let rest = PathText.components(PathText.remainder(of: path, under: b.source)).dropLast()
            for part in rest {
                prefix += "/" + part
                let dest = Self.inside(prefix, of: b)
                if host.files.kind(of: prefix) == .directory, pinned.insert(PathText.Key(dest)).inserted {
                    steps.append(MountStep(kind: .pin, destination: dest, readOnly: false, origin: origin))
                }
            }
        }
        // A read-only bind whose source lies inside a writable bind's source shows the
        // same files at two places: at its own destination and within the writable
        // one's.
        // - Where the two are one place, its mount rides on the directory it was made
        //   on, so the directories above it are pinned as for protect: a command that
        //   renamed a parent away and made a new one wrote where the policy says
        //   read-only (red team, session 46: `mv .github .github.old && mkdir -p
        //   .github/workflows` under rw {cwd}, ro {cwd}/.github/workflows changed the
        //   host's workflow). Pins clone their trees whole, the read-only mount inside
        //   with them.
        // - Where they are not, and the entry is at its own path, what it makes
        //   read-only is writable at the other place: refused (the same review: rw
        //   {src = W, dst = /w} with ro W/sub left /w/sub writable). One given a dst of
        //   its own is a view placed there, not a claim about the source's own place.
        for e in ordered {
            guard let inner = e.bind, inner.readOnly else { continue }
            for b in writable where PathText.isBeneath(inner.source, b.source) && !PathText.same(inner.source, b.source) {
                let there = Self.inside(inner.source, of: b)
                if PathText.same(there, inner.destination) {
                    pinParents(of: inner.source, under: b, origin: e.step.origin)
                } else if PathText.same(inner.source, inner.destination) {
                    throw PlanError(key: e.step.origin, message: "\(inner.source) lies inside \(b.source), which is bound writable at \(b.destination): the command could write it as \(there). Bind it there instead ({ src = \"\(inner.source)\", dst = \"\(there)\" }), or leave it out")
                }
            }
        }
        for b in writable {
            for name in policy.filesystem.protect {
                let path = Context.normalize(b.source + "/" + name)
                if case .symlink? = host.files.kind(of: path) {
                    throw PlanError(key: "filesystem.protect", message: "\(path) is a symlink; protect covers real files and directories only (the command could replace the link with a writable one). Remove the link or the name from protect")
                }
                if host.files.kind(of: path) != nil {
                    pinParents(of: path, under: b)
                    // Present now, so required at run time: gone by then means tampered.
                    steps.append(MountStep(kind: .protect, destination: Self.inside(path, of: b), readOnly: true, optional: false,
                                           origin: "filesystem.protect"))
                }
            }
            if policy.filesystem.protect.contains(".git") {
                for t in try gitIndirections(root: b.source, writable: writable.map(\.source), notApplied: &notApplied) {
                    guard let home = writable.first(where: { PathText.same($0.source, t.home) }) else { continue }
                    let dest = Self.inside(t.path, of: home)
                    if steps.contains(where: { $0.kind == .protect && PathText.same($0.destination, dest) }) { continue }
                    pinParents(of: t.path, under: home)
                    steps.append(MountStep(kind: .protect, destination: dest, readOnly: true, optional: false,
                                           origin: "filesystem.protect (\(t.key))"))
                }
            }
        }
        for (i, t) in policy.filesystem.mask.enumerated() {
            let path = try expand(t, key: "filesystem.mask[\(i)]")
            // Masks are placed while the root is built, where /proc/self is the builder,
            // PID 1: the command's own file stayed readable (red team, session 46).
            // (`/proc/mounts`, `/proc/net` and `/dev/fd` are links into it.)
            if let own = ["/proc/self", "/proc/thread-self", "/proc/mounts", "/proc/net", "/dev/fd",
                          "/dev/stdin", "/dev/stdout", "/dev/stderr"].first(where: { PathText.isBeneath(path, $0) }) {
                throw PlanError(key: "filesystem.mask[\(i)]", message: "\(path) is under \(own), which names whichever process looks: the mask would cover the sandbox init's file, not the command's. Mask a path that names one file (a /proc entry every process shares, such as /proc/kcore), or leave it out")
            }
            // A mask names a place inside the sandbox; a bind with a dst shows the files
            // of a host path elsewhere, unmasked, whatever else shows that path (a
            // read-only bind of a parent; the same review).
            if let outer = binds.first(where: { !PathText.same($0.source, $0.destination) && PathText.isBeneath(path, $0.source)
                && !PathText.isBeneath(path, $0.destination) }) {
                throw PlanError(key: "filesystem.mask[\(i)]", message: "\(path) lies inside \(outer.source), which is bound at \(outer.destination): the files it names are shown there, unmasked. Masks name places inside the sandbox: mask \(Self.inside(path, of: outer))")
            }
            if let b = writable.filter({ !PathText.same(path, $0.destination) && PathText.isBeneath(path, $0.destination) })
                .max(by: { $0.destination.count < $1.destination.count }) {
                let rest = PathText.remainder(of: path, under: b.destination)
                pinParents(of: Context.normalize(b.source + "/" + rest), under: b)
            }
            steps.append(MountStep(kind: .mask, destination: path, readOnly: true, optional: true,
                                   origin: "filesystem.mask"))
        }
        try beforeSocketScan(binds)
        steps += try SocketScan.masks(policy: policy, files: host.files, binds: binds, destinations: entries.values.map(\.dest),
                                      expand: expand, notApplied: &notApplied)   // SocketScan.swift
        return (steps, binds)
    }

    /// Where a host path beneath a bind's source is inside the sandbox.
    static func inside(_ hostPath: String, of b: ResolvedBind) -> String {
        PathText.same(hostPath, b.source) ? b.destination
            : Context.normalize(b.destination + "/" + PathText.remainder(of: hostPath, under: b.source))
    }

    /// With `.git` protected, what else git on the host runs or reads from a writable
    /// path (`GitProtection`): each (key, path, writable root) to protect.
    func gitIndirections(root: String, writable: [String],
                         notApplied: inout [String]) throws -> [(key: String, path: String, home: String)] {
        var search = GitProtection(files: host.files, home: host.home, environment: host.environment, writable: writable)
        try search.search(from: root)
        for line in search.notApplied where !notApplied.contains(line) { notApplied.append(line) }
        return search.out
    }

    // MARK: Landlock


    func landlockPlan(binds: [ResolvedBind], network net: NetworkPlan, notApplied: inout [String]) throws -> LandlockPlan {
        let ll = policy.landlock
        if ll.mode == .off {
            return LandlockPlan(mode: ll.mode, abi: 0, requiredABI: 0, handledAccessFS: [], rules: [],
                                connectTCP: nil, bindTCP: nil, scopes: [])
        }
        var needs: [(feature: String, abi: Int)] = [("filesystem rules", 1)]
        if ll.connectTCP != nil { needs.append(("landlock.connect_tcp", 4)) }
        if ll.bindTCP != nil { needs.append(("landlock.bind_tcp", 4)) }
        for s in ll.scope { needs.append(("landlock.scope \"\(s.rawValue)\"", s.abi)) }
        if let m = ll.minABI { needs.append(("landlock.min_abi", m)) }
        let required = needs.map(\.abi).max() ?? 1
        let abi = min(host.landlockABI, LandlockAccess.knownABI)
        let missing = needs.filter { $0.abi > abi }
        if !missing.isEmpty {
            let list = missing.map { "\($0.feature) (ABI \($0.abi))" }.joinedText(separator: ", ")
            if ll.mode == .enforce {
                let have = host.landlockABI > LandlockAccess.knownABI
                    ? "this kernel has Landlock ABI \(host.landlockABI), of which this build uses up to ABI \(abi)"
                    : "this kernel has Landlock ABI \(abi)"
                throw PlanError(key: "landlock.mode", message: abi == 0
                    ? "Landlock is not available on this kernel (needed for \(list)); set landlock.mode = \"best-effort\" or \"off\" to run without it"
                    : "\(have), but the policy needs \(list); set landlock.mode = \"best-effort\" to run without them")
            }
            let have = host.landlockABI > abi ? "kernel has \(host.landlockABI), this build uses up to \(abi)" : "kernel has \(abi)"
            for m in missing { notApplied.append("landlock: \(m.feature) needs ABI \(m.abi), \(have)") }
        }
        if abi == 0 {
            return LandlockPlan(mode: ll.mode, abi: 0, requiredABI: required, handledAccessFS: [],
                                rules: [], connectTCP: nil, bindTCP: nil, scopes: [])
        }
        let handled = LandlockAccess.all(abi: abi)
        let readRights: [LandlockAccess] = [.execute, .readFile, .readDir]
        func rights(_ wanted: [LandlockAccess], directory: Bool) -> [LandlockAccess] {
            wanted.filter { handled.contains($0) && (directory || $0.appliesToFiles) }
        }
        var rules: [LandlockRule] = []
        // Listing "/" only: traversal needs no right; this keeps `ls /` working.
        rules.append(LandlockRule(path: "/", hostPath: nil, access: [.readDir]))
        for b in binds {
            rules.append(LandlockRule(path: b.destination, hostPath: b.source,
                                      access: rights(b.readOnly ? readRights : handled, directory: b.isDirectory)))
        }
        for (i, t) in policy.filesystem.tmpfs.enumerated() {
            rules.append(LandlockRule(path: try expand(t, key: "filesystem.tmpfs[\(i)]"), hostPath: nil, access: handled))
        }
        rules.append(LandlockRule(path: "/dev", hostPath: nil,
                                  access: rights([.readFile, .writeFile, .readDir, .ioctlDev], directory: true)))
        rules.append(LandlockRule(path: "/dev/shm", hostPath: nil, access: handled))
        rules.append(LandlockRule(path: "/proc", hostPath: nil, access: [.readFile, .readDir, .writeFile]))
        // The in-memory resolv.conf and hosts (see NetworkRules): readable, nothing more.
        for file in InMemoryFile.allCases where net.text(of: file) != nil {
            rules.append(LandlockRule(path: file.destination, hostPath: nil, access: [.readFile]))
        }
        let hasNet = abi >= 4
        return LandlockPlan(
            mode: ll.mode, abi: abi, requiredABI: required, handledAccessFS: handled, rules: rules,
            connectTCP: hasNet ? ll.connectTCP?.sorted() : nil, bindTCP: hasNet ? ll.bindTCP?.sorted() : nil,
            scopes: ll.scope.filter { $0.abi <= abi }.sorted { $0.rawValue < $1.rawValue })
    }

    // MARK: Seccomp

    func seccompPlan(nested: NestedSeccomp? = nil) throws -> SeccompPlan {
        guard nested == nil else { return try buildSeccompPlan(nested: nested) }
        let inputs = SeccompPlanMemo.Inputs(
            seccomp: policy.seccomp, keep: policy.capabilities.keep, scope: policy.landlock.scope,
            network: policy.network.mode, arch: host.arch, kernelRelease: host.kernelRelease)
        return try SeccompPlanMemo.shared.plan(for: inputs) { try buildSeccompPlan(nested: nil) }
    }

    /// The seccomp section; for `nested: nil`, a function of `SeccompPlanMemo.Inputs`
    /// alone (nothing else of the policy or the host may be read here).
    func buildSeccompPlan(nested: NestedSeccomp?) throws -> SeccompPlan {
        let sc = policy.seccomp
        let arch = host.arch
        let enabled = sc.profile != nil || !sc.deny.isEmpty || sc.socketFamilies != nil || nested != nil
        let violation: (action: SeccompAction, errno: UInt32?) = {
            switch sc.onViolation {
            case .errno: return (.errno, 1)
            // "kill" is delivered through the supervisor so the result can name the
            // syscall: the call is held by the kernel (it never runs), the supervisor
            // records it and kills the whole sandbox, and the run ends with SIGSYS.
            case .kill: return (.notify, nil)
            // "log" = allow and record: through the supervisor too, so each call is
            // counted in the run result (it answers with FLAG_CONTINUE).
            case .log: return (.notify, nil)
            case .notify: return (.notify, nil)
            }
        }()
        let nestedDeny = (nested?.deny ?? []).filter { SyscallTable.number($0, arch: arch) != nil && !sc.deny.contains($0) }
        let denied = Set(sc.deny + nestedDeny)
        var rules: [SeccompRulePlan] = []
        var unknown = Set<String>()
        var defaultAction = SeccompAction.allow
        var defaultErrno: UInt32? = nil

        if let profile = sc.profile {
            // The profile's "deny everything else" becomes the policy's on_violation
            // action, so a violation is reported the same way whatever the profile.
            switch profile.defaultAction {
            case .allow, .log, .trace:
                defaultAction = profile.defaultAction
            case .errno:
                if sc.onViolation == .errno {
                    defaultAction = .errno
                    defaultErrno = profile.defaultErrnoRet ?? 1
                } else { (defaultAction, defaultErrno) = violation }
            case .kill, .killProcess, .killThread, .trap, .notify:
                (defaultAction, defaultErrno) = violation
            }
            let caps = Set(policy.capabilities.keep.map { "CAP_" + $0.uppercased() })
            for (i, rule) in profile.syscalls.enumerated() where applies(rule, caps: caps) {
                var names: [String] = []
                for n in rule.names where !denied.contains(n) {
                    if SyscallTable.number(n, arch: arch) == nil { unknown.insert(n) } else { names.append(n) }
                }
                if names.isEmpty { continue }
                rules.append(SeccompRulePlan(
                    syscalls: names, action: rule.action,
                    errno: rule.action == .errno ? (rule.errnoRet ?? 1) : rule.errnoRet,
                    args: rule.args.map { SeccompArgPlan(index: $0.index, op: $0.op, value: $0.value, valueTwo: $0.valueTwo) },
                    origin: "\(profile.source) syscalls[\(i)]"))
            }
            if let why = Self.ambiguity(rules) { throw PlanError(key: "seccomp.profile", message: why) }
        }
        if enabled { rules = Context.noSetuidBits(rules, arch: arch, denied: denied, defaultAllows: defaultAction == .allow) }
        if enabled && policy.landlock.scope.contains(.signal) {
            rules = Context.noSignalsToInit(rules, arch: arch, denied: denied, defaultAllows: defaultAction == .allow)
        }
        var namespaceFence = false
        if enabled && sc.deny.contains("unshare") && sc.onViolation != .log {
            (rules, namespaceFence) = Context.noNamespaceClones(rules, arch: arch, denied: denied, defaultAction: defaultAction)
        }
        // io_uring's operations (IORING_OP_OPENAT, _SOCKET, _CONNECT, _SETXATTR,
        // _RENAMEAT …) run in the kernel without the system calls a filter sees: with
        // io_uring_setup let through, every refusal of this filter — setuid and setgid
        // bits, socket_families, the deny list — is one ring away (found by the red
        // team of session 46: IORING_OP_SOCKET made sockets socket_families refuses).
        // So a filter refuses it whatever the profile says, as Docker's and Podman's
        // default profiles now do. A refusal the policy makes itself stands (under
        // "log" the deny list lets calls run, so it does not count there).
        let ioUring = "io_uring_setup"
        let ioUringRefusedByPolicy = nestedDeny.contains(ioUring) || (sc.deny.contains(ioUring) && sc.onViolation != .log)
        let passing: Set<SeccompAction> = sc.onViolation == .log ? [.allow, .log, .trace, .notify] : [.allow, .log, .trace]
        let refuseIoUring = enabled && !ioUringRefusedByPolicy
            && Self.letsThrough(ioUring, rules: rules, defaultAction: defaultAction, passing: passing, arch: arch)
        if refuseIoUring {
            rules = Self.removing([ioUring], from: rules)
            rules.append(SeccompRulePlan(syscalls: [ioUring], action: .errno, errno: 1, args: [], origin: SeccompPlan.noIoUringOrigin))
        }
        if sc.onViolation != .errno {
            // notify/log/kill: the filter is not logged (its log would repeat every
            // notification), so the built-in refusals reach the supervisor instead,
            // which answers each as the errno rule would (EPERM) and names it in the
            // denial account. Never allowed: the answer is always the refusal.
            // (clone3's ENOSYS is an answer glibc falls back on, not a refusal: it stays.)
            let builtin: Set<String> = [SeccompPlan.noSetuidBitsOrigin, SeccompPlan.noSignalsToInitOrigin, SeccompPlan.noIoUringOrigin,
                                        SeccompPlan.noNamespaceClonesOrigin]
            for i in rules.indices where rules[i].action == .errno && rules[i].errno == 1 && builtin.contains(rules[i].origin) {
                rules[i].action = .notify
                rules[i].errno = nil
            }
        }
        if enabled && (policy.network.mode == .none || policy.network.mode == .loopback) {
            rules = Context.connectThroughSupervisor(rules, arch: arch, denied: denied, defaultAllows: defaultAction == .allow)
        }
        if enabled, let fences = nested?.fences {
            rules = Context.argumentFences(fences, rules, arch: arch, denied: denied, defaultAllows: defaultAction == .allow)
        }
        let denyNames = sc.deny.filter { SyscallTable.number($0, arch: arch) != nil && !(refuseIoUring && $0 == ioUring) }
        for n in sc.deny where SyscallTable.number(n, arch: arch) == nil { unknown.insert(n) }
        if !denyNames.isEmpty {
            rules.append(SeccompRulePlan(syscalls: denyNames.sorted(), action: violation.action,
                                         errno: violation.errno, args: [], origin: "seccomp.deny"))
        }
        if !nestedDeny.isEmpty {
            rules.append(SeccompRulePlan(syscalls: nestedDeny.sorted(), action: .errno, errno: 1, args: [],
                                         origin: NestedSeccomp.origin))
        }
        let ioctls = enabled && SyscallTable.number("ioctl", arch: arch) != nil && !denied.contains("ioctl") ? nested?.ioctls : nil
        let ioctlsFenced = ioctls != nil
        // child.c's last steps: load this filter, stack the fence (with seccomp(2)),
        // then send this filter's listener to the supervisor with sendmsg(2). A filter
        // that refuses those calls failed the run with a bare EPERM; one that hands
        // them to the listener the supervisor does not hold yet left the run waiting
        // until its timeout, or for good (red team, session 47: sendmsg refused, or
        // allowed only under a condition the set-up's own call does not meet). So they
        // must pass whatever their arguments.
        let listens = rules.contains { $0.action == .notify } || defaultAction == .notify
        let stacks = ioctlsFenced || namespaceFence
        for (call, needed, why) in [("seccomp", stacks, "stacks a filter of its own after this one with seccomp(2)"),
                                    ("sendmsg", listens, "passes this filter's listener to the supervisor with sendmsg(2)")]
        where enabled && needed && !SeccompPlan.passesWhatever(call, rules: rules, defaultAction: defaultAction, arch: arch) {
            let mode = sc.onViolation == .errno || call != "sendmsg" ? "" : ", or use on_violation = \"errno\" where nothing else needs the supervisor"
            throw PlanError(key: "seccomp", message: "the sandbox's own set-up \(why) once the filter is loaded, and this filter does not let \(call) through whatever its arguments (the profile or the deny list refuses it, or allows it only under a condition; on_violation = \"\(sc.onViolation.rawValue)\"): the command could never start. Let \(call) through\(mode)")
        }
        let families = nested?.families ?? sc.socketFamilies.map { $0.sorted() }
        var numbers: [String: Int] = [:]
        for r in rules { for n in r.syscalls { numbers[n] = SyscallTable.number(n, arch: arch) } }
        // The cache key of the compiled BPF: it must cover everything the compiler
        // reads. Rendered as plain text (one line per field and rule) rather than
        // through an Encoder: this runs on every exec.
        var key = "arch \(arch)\ndefault \(defaultAction.rawValue) \(defaultErrno.map(String.init) ?? "-")\n"
        key += "families \(families?.map(\.rawValue).joinedText(separator: ",") ?? "*")\nviolation \(sc.onViolation.rawValue)\n"
        for r in rules {
            key += "rule \(r.action.rawValue) \(r.errno.map(String.init) ?? "-")"
            for n in r.syscalls { key += " \(n)=\(numbers[n].map(String.init) ?? "?")" }
            for a in r.args { key += " arg\(a.index) \(a.op.rawValue) \(a.value) \(a.valueTwo)" }
            key += "\n"
        }
        if let ioctls { key += "ioctls \(ioctls.map { String($0.number) }.joinedText(separator: ","))\n" }
        if namespaceFence { key += "namespace fence\n" }
        let digest = PlanDigest.sha256Hex(Array(key.utf8))
        return SeccompPlan(
            enabled: enabled, profile: sc.profile?.source, arch: arch, defaultAction: defaultAction,
            defaultErrno: defaultErrno, rules: rules, socketFamilies: families,
            onViolation: sc.onViolation, unknownSyscalls: unknown.sorted(),
            syscallNumbers: numbers, rulesDigest: digest, refusedIoctls: ioctls, namespaceFence: namespaceFence ? true : nil,
            explicitTimesViaSupervisor: rules.contains { $0.origin == NestedSeccomp.timesOrigin && $0.action == .notify } ? true : nil)
    }

    /// Why the profile's rules (those that apply here) cannot be compiled into the
    /// filter the plan shows, or nil: two rules without conditions that name a call with
    /// different answers (libseccomp keeps one, and the compiler leaves out a rule
    /// equal to the default: the plan could not say which holds; red team, session 47,
    /// made a user namespace so), two with the same conditions and different answers,
    /// or a rule with two conditions on one argument (libseccomp refuses both, so the
    /// run failed at `exec`).
    static func ambiguity(_ rules: [SeccompRulePlan]) -> String? {
        var plain: [String: SeccompRulePlan] = [:], conditioned: [String: SeccompRulePlan] = [:]
        for r in rules {
            let indices = r.args.map(\.index)
            if Set(indices).count != indices.count {
                return "\(r.origin) has two conditions on one argument, which libseccomp refuses; write one condition per argument (or two rules)"
            }
            let conditions = r.args.map { "\($0.index) \($0.op.rawValue) \($0.value) \($0.valueTwo)" }.sorted().joinedText(separator: ";")
            for name in r.syscalls {
                let key = "\(name)|\(conditions)"
                guard let other = r.args.isEmpty ? plain[key] : conditioned[key] else {
                    if r.args.isEmpty { plain[key] = r } else { conditioned[key] = r }
                    continue
                }
                if other.action != r.action || other.errno != r.errno {
                    let what = r.args.isEmpty ? "without conditions" : "under the same conditions"
                    return "\(other.origin) and \(r.origin) both name \(name) \(what), with different answers (\(other.action.rawValue), \(r.action.rawValue)): the filter keeps only one of them, so this plan could not say which holds. Keep one (or name \(name) in seccomp.deny)"
                }
            }
        }
        return nil
    }

    /// `rules` with `names` taken out of every rule, conditions or not, and the rules
    /// left naming nothing dropped: what a built-in rule that answers those calls
    /// itself starts from (libseccomp keeps one rule without conditions per call).
    static func removing(_ names: Set<String>, from rules: [SeccompRulePlan]) -> [SeccompRulePlan] {
        rules.compactMap { r in
            var r = r
            r.syscalls.removeAll(where: names.contains)
            return r.syscalls.isEmpty ? nil : r
        }
    }

    /// Whether the filter `rules` and `defaultAction` make could let `name` run: a rule
    /// whose action is one of `passing` names it (with or without conditions on its
    /// arguments), or no rule refuses it unconditionally and the default passes. A
    /// name this architecture does not have cannot run.
    static func letsThrough(_ name: String, rules: [SeccompRulePlan], defaultAction: SeccompAction,
                            passing: Set<SeccompAction>, arch: String) -> Bool {
        guard SyscallTable.number(name, arch: arch) != nil else { return false }
        let naming = rules.filter { $0.syscalls.contains(name) }
        if naming.contains(where: { passing.contains($0.action) }) { return true }
        if naming.contains(where: { $0.args.isEmpty }) { return false }
        return passing.contains(defaultAction)
    }

    /// The syscalls that set a file's mode, and which argument holds it.
    static let modeSetters: [(name: String, modeArg: UInt32)] = [
        ("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("creat", 1), ("mknod", 1), ("mknodat", 2),
    ]

    /// No setuid or setgid bit may be set from inside. `nosuid` mounts stop such a file
    /// from working inside, but a file written into an rw path stays on the host with
    /// the bit: root's runs would leave setuid-root programs behind, rootless runs
    /// setuid-to-the-invoker ones. So, whatever the profile says: a mode with S_ISUID
    /// or S_ISGID fails with EPERM, any other mode is allowed where the profile allowed
    /// the call. (open/openat with O_CREAT take a mode too; filtering them needs
    /// open/openat too, when they create (O_CREAT or O_TMPFILE). openat2's mode is
    /// behind a pointer and cannot be filtered — see Docs/status.md.)
    static let creatingOpens: [(name: String, flagsArg: UInt32, modeArg: UInt32)] = [("open", 1, 2), ("openat", 2, 3)]
    static let createFlags: [UInt64] = [0o100 /* O_CREAT */, 0o20000000 /* __O_TMPFILE */]

    static func noSetuidBits(_ rules: [SeccompRulePlan], arch: String, denied: Set<String>, defaultAllows: Bool) -> [SeccompRulePlan] {
        let guarded = modeSetters.filter { SyscallTable.number($0.name, arch: arch) != nil && !denied.contains($0.name) }
        let opens = creatingOpens.filter { SyscallTable.number($0.name, arch: arch) != nil && !denied.contains($0.name) }
        let names = Set(guarded.map(\.name) + opens.map(\.name))
        var allowed = defaultAllows ? names : []
        var out: [SeccompRulePlan] = []
        for var r in rules {
            if r.args.isEmpty, r.syscalls.contains(where: names.contains) {
                // An unconditional rule would win over the conditional ones below.
                if r.action == .allow || r.action == .log {
                    allowed.formUnion(r.syscalls.filter(names.contains))
                }
                r.syscalls.removeAll(where: names.contains)
                if r.syscalls.isEmpty { continue }
            }
            out.append(r)
        }
        let suid: UInt64 = 0o4000, sgid: UInt64 = 0o2000
        for (name, arg) in guarded {
            if allowed.contains(name) {
                out.append(SeccompRulePlan(syscalls: [name], action: .allow, errno: nil,
                                           args: [SeccompArgPlan(index: arg, op: .maskedEqual, value: suid | sgid, valueTwo: 0)],
                                           origin: SeccompPlan.noSetuidBitsOrigin))
            }
            for bit in [suid, sgid] {
                out.append(SeccompRulePlan(syscalls: [name], action: .errno, errno: 1,
                                           args: [SeccompArgPlan(index: arg, op: .maskedEqual, value: bit, valueTwo: bit)],
                                           origin: SeccompPlan.noSetuidBitsOrigin))
            }
        }
        let masked = SeccompOperator.maskedEqual
        for (name, flagsArg, modeArg) in opens {
            let origin = SeccompPlan.noSetuidBitsOrigin
            if allowed.contains(name) {
                // Not creating, or creating without those bits: as the profile said.
                let creating = createFlags.reduce(0, |)
                out.append(SeccompRulePlan(syscalls: [name], action: .allow, errno: nil,
                                           args: [SeccompArgPlan(index: flagsArg, op: masked, value: creating, valueTwo: 0)], origin: origin))
                out.append(SeccompRulePlan(syscalls: [name], action: .allow, errno: nil,
                                           args: [SeccompArgPlan(index: modeArg, op: masked, value: suid | sgid, valueTwo: 0)], origin: origin))
            }
            for flag in createFlags {
                for bit in [suid, sgid] {
                    out.append(SeccompRulePlan(syscalls: [name], action: .errno, errno: 1,
                                               args: [SeccompArgPlan(index: flagsArg, op: masked, value: flag, valueTwo: flag),
                                                      SeccompArgPlan(index: modeArg, op: masked, value: bit, valueTwo: bit)],
                                               origin: origin))
                }
            }
        }
        return out
    }

    /// The calls that signal a process by pid (arg 0).
    static let signallers = ["kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"]

    /// With Landlock's `signal` scope, a signal to PID 1 (the sandbox init: outside
    /// the payload's domain) fails with EPERM in the filter too: defence in depth,
    /// and, unlike the scope, a denial the seccomp log reports with audit off. Calls
    /// that reach PID 1 another way (pidfd_send_signal on a pidfd or /proc/1) are left
    /// to the scope. As for setuid bits, an unconditional rule for these names is
    /// replaced by "allowed unless arg 0 is 1" (libseccomp lets an unconditional rule
    /// win over conditional ones).
    static func noSignalsToInit(_ rules: [SeccompRulePlan], arch: String, denied: Set<String>, defaultAllows: Bool) -> [SeccompRulePlan] {
        let names = Set(signallers.filter { SyscallTable.number($0, arch: arch) != nil && !denied.contains($0) })
        var allowed = defaultAllows ? names : []
        var out: [SeccompRulePlan] = []
        for var r in rules {
            if r.args.isEmpty, r.syscalls.contains(where: names.contains) {
                if r.action == .allow || r.action == .log { allowed.formUnion(r.syscalls.filter(names.contains)) }
                r.syscalls.removeAll(where: names.contains)
                if r.syscalls.isEmpty { continue }
            }
            out.append(r)
        }
        for name in signallers where names.contains(name) {
            if allowed.contains(name) {
                out.append(SeccompRulePlan(syscalls: [name], action: .allow, errno: nil,
                                           args: [SeccompArgPlan(index: 0, op: .notEqual, value: 1, valueTwo: 0)],
                                           origin: SeccompPlan.noSignalsToInitOrigin))
            }
            out.append(SeccompRulePlan(syscalls: [name], action: .errno, errno: 1,
                                       args: [SeccompArgPlan(index: 0, op: .equal, value: 1, valueTwo: 0)],
                                       origin: SeccompPlan.noSignalsToInitOrigin))
        }
        return out
    }

    /// Where the deny list refuses unshare(2) — no new namespaces from inside — but
    /// clone(2) or clone3(2) would run unconditionally (`profile = "none"`, or a
    /// profile that allows them outright), the same namespaces were one clone away
    /// (red team, session 46: base's deny list under profile none). So clone with a
    /// namespace flag gets EPERM, and clone3, whose flags lie behind a pointer the
    /// filter cannot read, ENOSYS, as the default profile answers it (glibc then uses
    /// clone): rules of this filter, so the account names them in every mode.
    /// A profile's own conditional rules are left as they are when they plainly refuse
    /// namespaces (Docker's: clone allowed only with every namespace flag clear, the
    /// default refusing the rest); any others (a rule refusing CLONE_NEWNET alone, a
    /// condition that always holds) cannot be rewritten without loosening or reading
    /// them, so `fence` asks for the same refusals in a filter of their own stacked
    /// after this one, where no rule of this one can loosen them (red team, session
    /// 47: both such profiles made a user namespace).
    static func noNamespaceClones(_ rules: [SeccompRulePlan], arch: String, denied: Set<String>,
                                  defaultAction: SeccompAction) -> (rules: [SeccompRulePlan], fence: Bool) {
        let passing: Set<SeccompAction> = [.allow, .log, .trace]
        let flags = SeccompPlan.cloneNamespaceMask
        let defaultPasses = passing.contains(defaultAction)
        var names: [String] = [], fence = false
        for name in ["clone", "clone3"] where SyscallTable.number(name, arch: arch) != nil && !denied.contains(name) {
            let naming = rules.filter { $0.syscalls.contains(name) }
            let conditional = naming.filter { !$0.args.isEmpty }, unconditional = naming.filter { $0.args.isEmpty }
            let passes = unconditional.contains { passing.contains($0.action) }
            let refuses = unconditional.contains { !passing.contains($0.action) }
            if conditional.isEmpty {
                if unconditional.isEmpty ? defaultPasses : !refuses { names.append(name) }
                // Unconditional rules that disagree: libseccomp keeps one and drops
                // the rest, and a rule equal to the default is left out before it
                // (red team, session 47: ERRNO then ALLOW let clone through), so
                // which one holds is not the planner's to read.
                if passes && refuses { fence = true }
                continue
            }
            // Every passing rule must require the namespace flags clear (clone's
            // flags are its first argument; clone3's cannot be read), no rule without
            // conditions may name the call, and the default must refuse the rest.
            let plainlyRefused = unconditional.isEmpty && !defaultPasses
                && conditional.filter { passing.contains($0.action) }.allSatisfy { r in
                    name == "clone" && r.args.contains { a in
                        a.index == 0 && a.op == .maskedEqual && a.value & flags == flags && a.valueTwo & flags == 0
                    }
                }
            if !plainlyRefused { fence = true }
        }
        guard !names.isEmpty else { return (rules, fence) }
        var out = removing(Set(names), from: rules)
        let origin = SeccompPlan.noNamespaceClonesOrigin
        if names.contains("clone") {
            out.append(SeccompRulePlan(syscalls: ["clone"], action: .allow, errno: nil,
                                       args: [SeccompArgPlan(index: 0, op: .maskedEqual, value: flags, valueTwo: 0)], origin: origin))
            for flag in SeccompPlan.cloneNamespaceFlags {
                out.append(SeccompRulePlan(syscalls: ["clone"], action: .errno, errno: 1,
                                           args: [SeccompArgPlan(index: 0, op: .maskedEqual, value: flag, valueTwo: flag)], origin: origin))
            }
        }
        if names.contains("clone3") {
            out.append(SeccompRulePlan(syscalls: ["clone3"], action: .errno, errno: 38 /* ENOSYS */, args: [], origin: origin))
        }
        return (out, fence)
    }

    /// Network modes none and loopback: connect(2), where the profile allows it
    /// unconditionally, is handed to the supervisor (USER_NOTIF), which reads the
    /// destination for the denial account and always lets the call go on
    /// (FLAG_CONTINUE): the kernel then answers as it would have (ENETUNREACH for an
    /// address no interface routes), so nothing is decided on memory the caller
    /// could change. A connect that never reaches a fence (routing fails before any
    /// netfilter hook) is counted this way. Left as it is where the profile denies
    /// connect or allows it only under argument conditions.
    static func connectThroughSupervisor(_ rules: [SeccompRulePlan], arch: String, denied: Set<String>, defaultAllows: Bool) -> [SeccompRulePlan] {
        let name = "connect"
        guard SyscallTable.number(name, arch: arch) != nil, !denied.contains(name),
              !rules.contains(where: { !$0.args.isEmpty && $0.syscalls.contains(name) }) else { return rules }
        var allowed = defaultAllows
        var out: [SeccompRulePlan] = []
        for var r in rules {
            if r.syscalls.contains(name) {
                guard r.action == .allow || r.action == .log else { return rules }
                allowed = true
                r.syscalls.removeAll { $0 == name }
                if r.syscalls.isEmpty { continue }
            }
            out.append(r)
        }
        guard allowed else { return rules }
        out.append(SeccompRulePlan(syscalls: [name], action: .notify, errno: nil, args: [],
                                   origin: SeccompPlan.connectAccountOrigin))
        return out
    }

    /// Nested: each fenced call is allowed in its fence's forms where the profile
    /// allowed it unconditionally (or the default allows), and refused with EPERM in
    /// the fence's refused forms whatever the profile says. A profile that restricts
    /// the call by its arguments itself gets it refused in every form: its conditions
    /// and the fence's could overlap, and libseccomp does not say which matching
    /// conditional rule wins (no shipped profile does this). A call the policy denies
    /// (seccomp.deny) keeps its deny rule alone.
    static func argumentFences(_ fences: [ArgumentFence], _ rules: [SeccompRulePlan], arch: String, denied: Set<String>,
                               defaultAllows: Bool) -> [SeccompRulePlan] {
        let fences = fences.filter { SyscallTable.number($0.syscall, arch: arch) != nil && !denied.contains($0.syscall) }
        let names = Set(fences.map(\.syscall))
        var allowed = defaultAllows ? names : []
        var conditional: Set<String> = []
        var out: [SeccompRulePlan] = []
        for var r in rules {
            let fenced = r.syscalls.filter(names.contains)
            if !fenced.isEmpty {
                if !r.args.isEmpty { conditional.formUnion(fenced) }
                else if r.action == .allow || r.action == .log { allowed.formUnion(fenced) }
                r.syscalls.removeAll(where: names.contains)
                if r.syscalls.isEmpty { continue }
            }
            out.append(r)
        }
        for f in fences {
            if conditional.contains(f.syscall) {
                out.append(SeccompRulePlan(syscalls: [f.syscall], action: .errno, errno: 1, args: [], origin: f.origin))
                continue
            }
            if allowed.contains(f.syscall) {
                for form in f.allowed {
                    out.append(SeccompRulePlan(syscalls: [f.syscall], action: .allow, errno: nil, args: form.map(\.arg), origin: f.origin))
                }
                for form in f.notified {
                    out.append(SeccompRulePlan(syscalls: [f.syscall], action: .notify, errno: nil, args: form.map(\.arg), origin: f.origin))
                }
            }
            for form in f.refused {
                out.append(SeccompRulePlan(syscalls: [f.syscall], action: .errno, errno: 1, args: form.map(\.arg), origin: f.origin))
            }
        }
        return out
    }

    /// Docker's includes/excludes, evaluated for this host and the kept capabilities.
    func applies(_ rule: SeccompRule, caps: Set<String>) -> Bool {
        let archNames: Set<String> = host.arch == "x86_64" ? ["amd64", "x86_64", "x32"] : ["arm64", "aarch64"]
        func holds(_ c: SeccompCondition, all: Bool) -> Bool {
            var results: [Bool] = []
            if !c.caps.isEmpty { results.append(all ? c.caps.allSatisfy(caps.contains) : c.caps.contains(where: caps.contains)) }
            if !c.arches.isEmpty { results.append(c.arches.contains(where: archNames.contains)) }
            if let k = c.minKernel { results.append(Context.kernel(host.kernelRelease, atLeast: k)) }
            return all ? results.allSatisfy { $0 } : results.contains(true)
        }
        if !rule.includes.isEmpty && !holds(rule.includes, all: true) { return false }
        if !rule.excludes.isEmpty && holds(rule.excludes, all: false) { return false }
        return true
    }

    static func kernel(_ release: String, atLeast wanted: String) -> Bool {
        func parts(_ s: String) -> [Int] {
            s.split(whereSeparator: { !$0.isASCIIDigit }).prefix(2).map { Int($0) ?? 0 }
        }
        let a = parts(release), b = parts(wanted)
        return (a.first ?? 0, a.dropFirst().first ?? 0) >= (b.first ?? 0, b.dropFirst().first ?? 0)
    }

    // MARK: Capabilities, resources

    func capabilityPlan() throws -> CapabilityPlan {
        var mask: UInt64 = 0
        var names: [String] = []
        for name in policy.capabilities.keep {
            guard let n = CapabilityTable.number(name) else {
                throw PlanError(key: "capabilities.keep", message: "unknown capability \"\(name)\"")
            }
            mask |= 1 << UInt64(n)
            names.append("cap_" + (CapabilityTable.canonicalName(name) ?? name))
        }
        return CapabilityPlan(keep: names.sorted(), keepMask: mask)
    }

    func resourcePlan() -> ResourcePlan {
        let r = policy.resources
        let period: UInt64 = 100_000
        return ResourcePlan(
            memoryBytes: r.memoryBytes, swapBytes: r.memoryBytes != nil ? (r.swapBytes ?? 0) : r.swapBytes,
            pids: r.pids, cpuQuotaUs: r.cpu.map { UInt64(($0 * Double(period)).rounded()) },
            cpuPeriodUs: r.cpu != nil ? period : nil, ioWeight: r.ioWeight, bestEffort: r.bestEffort.sorted())
    }
}

extension SeccompPlan {
    /// The argument that holds the mode of each call the no-setuid rules guard, and
    /// of the opens the argument with their create flags (Context.modeSetters,
    /// creatingOpens): the supervisor reads a handed-over call with them.
    public static let modeArgument: [String: UInt32] = Dictionary(
        uniqueKeysWithValues: Context.modeSetters.map { ($0.name, $0.modeArg) } + Context.creatingOpens.map { ($0.name, $0.modeArg) })
    public static let createFlagsArgument: [String: UInt32] = Dictionary(
        uniqueKeysWithValues: Context.creatingOpens.map { ($0.name, $0.flagsArg) })
    public static let createFlags: UInt64 = Context.createFlags.reduce(0, |)
}

