import Glibc
import SandboxVocabulary

/// The host's cgroup layout, probed once and shared by the executor (to create run
/// cgroups) and `sandbox doctor` (to explain what works). Every path the facility
/// touches derives from this value, so tests can build one for another hierarchy
/// (`init(mode:…)`) or parse a canned mountinfo (`probe(procRoot:)`).
public struct CgroupHost: Sendable {
    /// The layout in use.
    public var mode: CgroupMode
    /// Controllers usable for limits, in this order where present: `memory`, `pids`,
    /// `cpu`, then `io` (v2) or `blkio` (v1), then `freezer` (v1, teardown only).
    public var controllers: [String]
    /// Whether this invoker can create run cgroups (root, or a writable v2 delegation).
    public var canCreate: Bool
    /// Human lines for `sandbox doctor`: mode, controllers, delegation, and what each
    /// missing controller disables.
    public var summary: [String]

    /// The directory, directly under each hierarchy's base, that holds run cgroups.
    /// Created once and kept: it is ours, and concurrent runs share it. Tests use
    /// their own name so they never meet real runs.
    public var parentName: String
    /// v2 only: the existing cgroup under which `parentName` lives — the mount point
    /// for root, the top of the invoker's writable (delegated) subtree otherwise.
    public var unifiedBase: String?
    /// v1: the invoker's own cgroup directory in each controller's hierarchy (from
    /// /proc/self/cgroup), e.g. memory → /sys/fs/cgroup/memory/ci/job-42.
    public var v1InvokerDirs: [String: String] = [:]
    /// v1: create each run's cgroups inside the invoker's own (as
    /// `<invoker>/<parentName>-<run-id>`), so the invoker's limits still bound the run
    /// (a CI job's memory limit is not escaped by a policy's larger one). The executor
    /// sets this; when the invoker is at a hierarchy's root, runs go under
    /// `<mount>/<parentName>/` as before.
    public var nestUnderInvoker = false

    // Feature details found by the probe (v1), used by RunCgroup.create.
    /// `memory.memsw.limit_in_bytes` exists (swap accounting is on).
    var v1SwapLimit: Bool = false
    /// `blkio.weight` (CFQ, gone since 5.0) or `blkio.bfq.weight` (BFQ), if either exists.
    var v1BlkioWeightFile: String?

    /// The v1 controllers a run uses, in the order their directories are created and
    /// their `cgroup.procs` joined: freezer first, so that every process of the run is
    /// frozen-and-killable whatever else it managed to join.
    static let v1RunControllers = ["freezer", "memory", "pids", "cpu", "cpuacct", "blkio"]
    /// The v2 controllers limits use.
    static let v2LimitControllers = ["memory", "pids", "cpu", "io"]

    /// Reads `<procRoot>/self/mountinfo` and `<procRoot>/self/cgroup` and builds the
    /// host view. Never fails: a host without usable cgroups is `.unavailable`.
    public static func probe(procRoot: String = "/proc") -> CgroupHost {
        let selfCgroup = SelfCgroup(CgroupFS.read(procRoot + "/self/cgroup") ?? "")
        let mounts = cgroupMounts(FileSystemLocation.mounts(mountinfo: procRoot + "/self/mountinfo"))
        let mode = mode(of: mounts)
        var invoker: String? = nil
        if case .unified(let mp) = mode, let m = mounts.first(where: { $0.fstype == "cgroup2" && $0.mountPoint == mp }) {
            invoker = selfCgroup.directory(controller: nil, mount: m)
        }
        var host = CgroupHost(mode: mode, invokerCgroup: invoker)
        if case .hybrid(let v1, _) = mode {
            for (controller, mountPoint) in v1 {
                guard let m = mounts.first(where: { $0.mountPoint == mountPoint }),
                      let dir = selfCgroup.directory(controller: controller, mount: m) else { continue }
                host.v1InvokerDirs[controller] = dir
            }
        }
        return host
    }

    /// The invoker's directory in a v1 hierarchy: the `/proc/self/cgroup` line whose
    /// controller list names `controller`, joined to the mount (minus its root).
    static func v1InvokerDirectory(selfCgroup: String, controller: String, mount: Mount) -> String? {
        SelfCgroup(selfCgroup).directory(controller: controller, mount: mount)
    }

    /// Our own cgroup2 directory: the `0::` line of /proc/self/cgroup (relative to our
    /// cgroup namespace) joined to the mount point, after removing the mount's root.
    static func invokerDirectory(selfCgroup: String, mount: Mount) -> String? {
        SelfCgroup(selfCgroup).directory(controller: nil, mount: mount)
    }

    /// `/proc/self/cgroup`, split once into its `id:controllers:path` lines (a run
    /// looks up each of its six v1 controllers in it).
    struct SelfCgroup {
        struct Line { var controllers: [Substring]; var path: Substring; var unified: Bool }
        let lines: [Line]

        init(_ text: String) {
            lines = text.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3 else { return nil }
                return Line(controllers: parts[1].split(separator: ","), path: parts[2],
                            unified: parts[0] == "0" && parts[1].isEmpty)
            }
        }

        /// The directory of the line naming `controller` (nil: the cgroup2 `0::` line),
        /// joined to the mount point after removing the mount's root; nil where the
        /// path was deleted, climbs out with `..` (our cgroup lies outside our cgroup
        /// namespace's root: it has no path under the mount), or lies outside the
        /// mount. `..` is looked for as bytes: compared as characters, `/..` followed
        /// by a combining mark did not match `/../`, and such a path was joined.
        func directory(controller: String?, mount: Mount) -> String? {
            let found = controller.map { c in lines.first { $0.controllers.contains(Substring(c)) } }
                ?? lines.first { $0.unified }
            guard let line = found else { return nil }
            var path = String(line.path)
            if path.hasSuffix(" (deleted)") { return nil }
            if Self.hasDotDotComponent(path) { return nil }
            if mount.root != "/" {
                guard path == mount.root || path.hasPrefix(mount.root + "/") else { return nil }
                path = String(path.dropFirst(mount.root.count))
            }
            return path.isEmpty || path == "/" ? mount.mountPoint : mount.mountPoint + path
        }

        /// A `..` after a slash, inside (`/../`) or at the end (`/..`), compared as bytes.
        static func hasDotDotComponent(_ path: String) -> Bool {
            let b = Array(path.utf8)
            guard b.count >= 3 else { return false }
            for i in 0...(b.count - 3) where b[i] == 0x2F && b[i + 1] == 0x2E && b[i + 2] == 0x2E {
                if i + 3 == b.count || b[i + 3] == 0x2F { return true }
            }
            return false
        }
    }

    /// Builds the host view for a given layout by looking at its files.
    /// - Parameters:
    ///   - invokerCgroup: v2, rootless: the invoker's own cgroup directory (absolute
    ///     path under the mount point); the run cgroups nest in its delegated subtree.
    ///   - euid: whose permissions decide where run cgroups go (root: under the mount).
    public init(mode: CgroupMode, parentName: String = "sandbox", invokerCgroup: String? = nil,
                euid: uid_t = geteuid()) {
        self.mode = mode
        self.parentName = parentName
        self.controllers = []
        self.canCreate = false
        self.summary = []
        switch mode {
        case .unavailable:
            summary = ["cgroups: unavailable (no cgroup2 or cgroup v1 controller mount in /proc/self/mountinfo)",
                       "memory, swap, pids, cpu, io limits: cannot be applied (error unless best-effort); OOM, pids and CPU statistics are not reported"]
        case .unified(let mountPoint):
            probeUnified(mountPoint: mountPoint, invokerCgroup: invokerCgroup, euid: euid)
        case .hybrid(let v1, let unified):
            probeHybrid(v1: v1, unified: unified, euid: euid)
        }
    }

    // MARK: v2

    private mutating func probeUnified(mountPoint: String, invokerCgroup: String?, euid: uid_t) {
        summary.append("cgroup mode: unified (cgroup v2 at \(mountPoint))")
        // Root puts run cgroups directly under the mount point. Rootless, only a
        // delegated subtree is writable: use its top, the highest writable ancestor of
        // our own cgroup (for systemd: user@UID.service), which has no processes of
        // its own, so its subtree_control may hold controllers.
        var base: String? = nil
        if euid == 0 {
            base = mountPoint
        } else if let own = invokerCgroup {
            var candidate: String? = nil
            var dir = own
            while dir.count > mountPoint.count && dir.hasPrefix(mountPoint + "/") {
                guard CgroupFS.isWritable(dir), CgroupFS.isWritable(dir + "/cgroup.procs") else { break }
                candidate = dir
                dir = Self.parentDirectory(dir)
            }
            base = candidate
        }
        unifiedBase = base
        guard let base else {
            summary.append("run cgroups: cannot be created: not root and no writable (delegated) cgroup above \(invokerCgroup ?? "our own cgroup") — with systemd, run under a unit with Delegate=yes (user@UID.service is delegated by default)")
            summary.append(contentsOf: Self.missingLines(Self.v2LimitControllers, why: "no cgroup can be created"))
            return
        }
        let parent = base + "/" + parentName
        // The parent is ours; its writability is what matters once it exists.
        canCreate = CgroupFS.isDirectory(parent) ? CgroupFS.isWritable(parent) : CgroupFS.isWritable(base)
        summary.append("run cgroups: \(parent)/<run-id>" + (canCreate ? "" : " — not writable by this user"))
        // A controller reaches our parent only if the base enables it for children.
        // We never write the base's subtree_control (it is not ours: the host's root
        // cgroup or systemd's delegation); we only enable controllers in our parent's.
        let enabled = Set(CgroupFS.words(CgroupFS.read(base + "/cgroup.subtree_control") ?? ""))
        let available = Set(CgroupFS.words(CgroupFS.read(base + "/cgroup.controllers") ?? ""))
        controllers = Self.v2LimitControllers.filter { enabled.contains($0) }
        summary.append("controllers: " + (controllers.isEmpty ? "none" : controllers.joinedText(separator: " ")) + " (enabled in \(base)/cgroup.subtree_control)")
        for c in Self.v2LimitControllers where !enabled.contains(c) {
            let why = available.contains(c)
                ? "not enabled in \(base)/cgroup.subtree_control (enable it: echo +\(c) > \(base)/cgroup.subtree_control)"
                : "not available in \(base) (bound to a v1 hierarchy, not delegated, or not built)"
            summary.append(contentsOf: Self.missingLines([c], why: why))
        }
        // cgroup.kill (Linux 5.14) is a core file of every non-root cgroup; the root has
        // none, so look at our parent once it exists.
        if CgroupFS.isDirectory(parent) && !CgroupFS.exists(parent + "/cgroup.kill") {
            summary.append("teardown: no cgroup.kill (Linux < 5.14): runs are frozen, then killed process by process through pidfds")
        }
    }

    // MARK: v1

    private mutating func probeHybrid(v1: [String: String], unified: String?, euid: uid_t) {
        summary.append("cgroup mode: hybrid (cgroup v1 controllers" + (unified.map { "; cgroup2 at \($0) is not used for limits" } ?? "") + ")")
        summary.append("run cgroups: <controller mount>/\(parentName)/<run-id> for memory, pids, cpu, cpuacct, freezer (blkio when io is limited)")
        var usable: [String] = []
        for c in ["memory", "pids", "cpu"] where v1[c] != nil { usable.append(c) }
        if let blkio = v1["blkio"] {
            if CgroupFS.exists(blkio + "/blkio.weight") { v1BlkioWeightFile = "blkio.weight" }
            else if CgroupFS.exists(blkio + "/blkio.bfq.weight") { v1BlkioWeightFile = "blkio.bfq.weight" }
            if v1BlkioWeightFile != nil { usable.append("blkio") }
        }
        if v1["freezer"] != nil { usable.append("freezer") }
        controllers = usable
        summary.append("controllers: " + (usable.isEmpty ? "none" : usable.joinedText(separator: " ")) + " (v1)" + (v1["cpuacct"] != nil ? "; cpuacct for CPU time" : ""))

        if let memory = v1["memory"] {
            v1SwapLimit = CgroupFS.exists(memory + "/memory.memsw.limit_in_bytes")
            if !v1SwapLimit {
                summary.append("swap: cannot be limited (no memory.memsw.limit_in_bytes: swap accounting is off, boot with swapaccount=1) → a memory limit needs `swap` marked best-effort")
            }
        }
        for c in ["memory", "pids", "cpu"] where v1[c] == nil {
            summary.append(contentsOf: Self.missingLines([c], why: "no v1 \(c) hierarchy is mounted"))
        }
        if v1["cpuacct"] == nil { summary.append("cpuacct: not mounted → CPU user/system time is not reported") }
        if v1BlkioWeightFile == nil {
            let why = v1["blkio"] == nil ? "no v1 blkio hierarchy is mounted"
                : "blkio has neither blkio.weight (CFQ, removed in Linux 5.0) nor blkio.bfq.weight (BFQ scheduler not in use)"
            summary.append(contentsOf: Self.missingLines(["io"], why: why))
        }

        // Creating needs each hierarchy writable: the mount (to create our parent) or
        // our parent once it exists (an administrator may pre-create and chown it).
        var blockers: [String] = []
        guard v1["freezer"] != nil else {
            canCreate = false
            summary.append("run cgroups: cannot be created: no v1 freezer hierarchy, and without it the processes of a run cannot be killed without PID races")
            return
        }
        for c in Self.v1RunControllers where c != "blkio" {
            guard let mount = v1[c] else { continue }
            let parent = mount + "/" + parentName
            let ok = CgroupFS.isDirectory(parent) ? CgroupFS.isWritable(parent) : CgroupFS.isWritable(mount)
            if !ok { blockers.append(CgroupFS.isDirectory(parent) ? parent : mount) }
        }
        canCreate = blockers.isEmpty
        summary.append(canCreate ? "delegation: run cgroups can be created" + (euid == 0 ? " (root)" : "")
                                 : "delegation: run cgroups cannot be created: not writable: " + blockers.joinedText(separator: ", ") + " (v1 has no safe delegation; run as root)")
    }

    private static func missingLines(_ controllers: [String], why: String) -> [String] {
        controllers.map { c in
            switch c {
            case "memory": "memory: missing (\(why)) → `memory` and `swap` limits fail unless best-effort; OOM kills and peak memory are not reported"
            case "pids": "pids: missing (\(why)) → `pids` limits fail unless best-effort; a fork bomb is contained only by RLIMIT_NPROC"
            case "cpu": "cpu: missing (\(why)) → `cpu` limits fail unless best-effort"
            case "io": "io: missing (\(why)) → `io` limits fail unless best-effort"
            default: "\(c): missing (\(why))"
            }
        }
    }

    // MARK: parsing

    /// A mount-table line, from the project's one mountinfo reader.
    typealias Mount = FileSystemLocation.Mount

    /// The cgroup and cgroup2 mounts of a table.
    static func cgroupMounts(_ mounts: [Mount]) -> [Mount] {
        mounts.filter { $0.fstype == "cgroup" || $0.fstype == "cgroup2" }
    }

    /// The cgroup mounts of mountinfo text (tests, canned tables).
    static func parseMountinfo(_ text: String) -> [Mount] {
        cgroupMounts(FileSystemLocation.parse(Array(text.utf8)))
    }

    /// The layout the mounts describe. Hybrid only if a controller we use sits on a
    /// v1 hierarchy (a stray v1 `net_cls` mount next to a full cgroup2 does not count).
    static func mode(of mounts: [Mount]) -> CgroupMode {
        var v1: [String: String] = [:]
        for m in mounts where m.fstype == "cgroup" {
            for option in m.superOptions.split(separator: ",") {
                let c = String(option)
                if v1RunControllers.contains(c) && v1[c] == nil { v1[c] = m.mountPoint }
            }
        }
        let unified = mounts.first(where: { $0.fstype == "cgroup2" })?.mountPoint
        if !v1.isEmpty { return .hybrid(v1: v1, unified: unified) }
        if let unified { return .unified(mountPoint: unified) }
        return .unavailable
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
