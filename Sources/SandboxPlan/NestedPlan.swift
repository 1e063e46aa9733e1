import SandboxPolicy
import SandboxVocabulary

/// How the run is isolated, and — nested — every layer a namespaced run has, each
/// with whether it applies and how (`plan.isolation`, copied into the result). nil
/// in a plan: the policy asks for namespaces only (`process.isolation` unset).
public struct IsolationPlan: Codable, Sendable, Equatable {
    /// The policy's `process.isolation`.
    public var requested: Isolation
    /// What this run gets: `namespaces` or `nested`.
    public var mode: Isolation
    /// Why this mode: the policy's choice, or what the probe found.
    public var reason: String
    /// Nested: each layer, applied or not, and how. Empty with namespaces.
    public var layers: [IsolationLayer]
    /// `process.nested_without`: what the policy accepts a nested run may lack.
    public var accepted: [NestedGap]
}

public struct IsolationLayer: Codable, Sendable, Equatable {
    /// `landlock`, `seccomp`, `pid_namespace`, `mask`… (Docs/policy-reference.md).
    public var name: String
    public var applied: Bool
    /// What it does here, or what is lost without it.
    public var how: String
}

/// The seccomp rules a nested run adds in place of the namespaces it lacks.
struct NestedSeccomp {
    /// The socket families left (nil: the policy's list, or all).
    var families: [SocketFamily]?
    /// Calls refused with EPERM.
    var deny: [String]
    /// Calls allowed only in some forms of their arguments, the others refused with EPERM.
    var fences: [ArgumentFence]
    /// ioctl commands refused with EPERM (`refusedIoctls`).
    var ioctls: [IoctlCommand] = NestedSeccomp.refusedIoctls
    static let ipcCalls = ["shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl",
                           "semget", "semop", "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend",
                           "mq_timedreceive", "mq_notify", "mq_getsetattr"]
    static let origin = "builtin: nested, no System V IPC or POSIX message queues"
    static let fenceOrigin = "builtin: nested, only on itself"
    static let timesOrigin = "builtin: nested, explicit times through the supervisor"

    /// R2: Landlock does not cover a file's times, so a nested command could set the
    /// access and modification times of any file the invoker owns, anywhere on the
    /// host. Times NULL ("now", what `touch` passes) stay allowed in the kernel: they
    /// need write access to the file, which Landlock does mediate where it matters
    /// less (a time of "now" misleads no build). Explicit times (`tar -x`, `cp -p`,
    /// `rsync -t`, `shutil.copy2`) go to the supervisor (USER_NOTIF; TimesFence),
    /// which reads the path and times once, resolves the target itself, sets them on
    /// its own descriptor when the target lies beneath a writable bind and is the
    /// command's, and answers with that result or EPERM: never CONTINUE, so nothing
    /// the caller changes after the check matters. The filter cannot tell a
    /// UTIME_NOW pair from explicit times (they are behind the pointer), so only NULL
    /// stays in the kernel. The legacy calls (glibc has used utimensat for them since
    /// 2.33; only old static binaries make them) keep NULL and get EPERM otherwise.
    static let explicitTimes: [ArgumentFence] = [
        ArgumentFence(syscall: "utimensat", allowed: [[.equal(2, 0)]], refused: [], notified: [[.notEqual(2, 0)]],
                      origin: timesOrigin),
        ArgumentFence(syscall: "utime", allowed: [[.equal(1, 0)]], refused: [[.notEqual(1, 0)]], origin: timesOrigin),
        ArgumentFence(syscall: "utimes", allowed: [[.equal(1, 0)]], refused: [[.notEqual(1, 0)]], origin: timesOrigin),
        ArgumentFence(syscall: "futimesat", allowed: [[.equal(2, 0)]], refused: [[.notEqual(2, 0)]], origin: timesOrigin),
    ]
    /// Refused in every nested run, whatever the policy says (red-team of nested):
    /// io_uring makes sockets without socket(2), past the family filter. Landlock
    /// (ABI <= 7) does not cover a file's mode, owner or extended attributes, so
    /// without a read-only mount or a uid of its own the command could chmod or set
    /// an ACL on any file the invoker owns: the path forms on every path of the host,
    /// the fd forms on every file in an ro bind (a read-only fd is enough: the kernel
    /// checks ownership, not the fd's mode), so every form is refused. inotify and
    /// fanotify are not mediated by Landlock either: a watch on a directory outside
    /// every bind reports the names created, opened and changed there.
    static let alwaysDenied = ["io_uring_setup", "io_uring_enter", "io_uring_register",
                               "chmod", "fchmod", "fchmodat", "fchmodat2",
                               "chown", "fchown", "lchown", "fchownat",
                               "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
                               "removexattr", "lremovexattr", "fremovexattr", "removexattrat", "file_setattr",
                               "inotify_add_watch", "fanotify_init", "fanotify_mark"]

    /// ioctl commands that change an inode (or create or remove one) where the kernel
    /// checks only that the caller owns it, or may write its directory, not how the fd
    /// was opened and not Landlock: through a read-only fd on a file in an `ro` bind (a
    /// directory fd is always read-only) a nested command could change the invoker's
    /// files there. Refused in every nested run, whatever the profile says. Numbers from
    /// the kernel's uapi headers (linux/fs.h, fscrypt.h, fsverity.h, btrfs.h, msdos_fs.h; ext4's
    /// from fs/ext4/ext4.h), the asm-generic encoding x86_64 and aarch64 share.
    ///
    /// How: a second, small filter stacked after the main one (default ALLOW; EPERM
    /// when ioctl's cmd, its low 32 bits — the kernel reads `unsigned int`, callers
    /// pass it sign-extended or not — is one of these). Not rules in the main filter:
    /// libseccomp 2.5 drops a conditional rule for a call the profile allows
    /// unconditionally (measured: seccomp_rule_add returns 0 and the exported filter
    /// allows every ioctl), so the main filter would have to allow every other command
    /// in forms of its own. The kernel runs every stacked filter and takes the most
    /// restrictive answer (ERRNO over USER_NOTIF and ALLOW), so the second filter
    /// refuses these whatever the first says and changes nothing else.
    ///
    /// Left allowed on purpose: FIDEDUPERANGE (an owner may dedupe through a read-only
    /// fd, but the kernel shares only ranges whose bytes are equal: contents unchanged),
    /// FICLONE/FICLONERANGE and the f2fs and ext4 data ioctls (they need the fd opened
    /// for writing), and what needs a capability the command does not have
    /// (FS_IOC_REMOVE_ENCRYPTION_KEY_ALL_USERS, btrfs device and quota ioctls,
    /// immutable and append-only flags).
    static let refusedIoctls: [IoctlCommand] = [
        // chattr: the flags an owner may set (d nodump, A noatime, S sync, …).
        IoctlCommand("FS_IOC_SETFLAGS", 0x4008_6602), IoctlCommand("FS_IOC32_SETFLAGS", 0x4004_6602),
        // The extended form (xflags, extent size hint; XFS and ext4).
        IoctlCommand("FS_IOC_FSSETXATTR", 0x401c_5820),
        // The inode's generation number.
        IoctlCommand("FS_IOC_SETVERSION", 0x4008_7602), IoctlCommand("FS_IOC32_SETVERSION", 0x4004_7602),
        IoctlCommand("EXT4_IOC_SETVERSION", 0x4008_6604), IoctlCommand("EXT4_IOC32_SETVERSION", 0x4004_6604),
        // ext4: converts the inode's block map to extents.
        IoctlCommand("EXT4_IOC_MIGRATE", 0x0000_6609),
        // fs-verity on a read-only fd by design: the file is read-only for good.
        IoctlCommand("FS_IOC_ENABLE_VERITY", 0x4080_6685),
        // fscrypt: a policy on an empty directory the owner has (v1 and v2 policies
        // share this number; there is no separate "_EX" set), and the user's keys on
        // the filesystem (removing the invoker's key locks its encrypted files).
        IoctlCommand("FS_IOC_SET_ENCRYPTION_POLICY", 0x800c_6613),
        IoctlCommand("FS_IOC_ADD_ENCRYPTION_KEY", 0xc050_6617), IoctlCommand("FS_IOC_REMOVE_ENCRYPTION_KEY", 0xc040_6618),
        // btrfs: a subvolume or snapshot is made in (or removed from, with
        // user_subvol_rm_allowed) any directory the uid may write, with no LSM hook;
        // the subvolume's read-only flag and received UUID need only ownership.
        IoctlCommand("BTRFS_IOC_SNAP_CREATE", 0x5000_9401), IoctlCommand("BTRFS_IOC_SNAP_CREATE_V2", 0x5000_9417),
        IoctlCommand("BTRFS_IOC_SUBVOL_CREATE", 0x5000_940e), IoctlCommand("BTRFS_IOC_SUBVOL_CREATE_V2", 0x5000_9418),
        IoctlCommand("BTRFS_IOC_SNAP_DESTROY", 0x5000_940f), IoctlCommand("BTRFS_IOC_SNAP_DESTROY_V2", 0x5000_943f),
        IoctlCommand("BTRFS_IOC_SUBVOL_SETFLAGS", 0x4008_941a),
        IoctlCommand("BTRFS_IOC_SET_RECEIVED_SUBVOL", 0xc0c8_9425), IoctlCommand("BTRFS_IOC_SET_RECEIVED_SUBVOL_32", 0xc0c0_9425),
        // btrfs defrag checks only that the uid may write the file (DAC), "not the file
        // descriptor": through a read-only fd on an ro bind's file it rewrites (and,
        // with the compress flag, recompresses) its extents and unshares the extents
        // it shares with snapshots and reflinks (red team 6, G6). Nothing a build needs.
        IoctlCommand("BTRFS_IOC_DEFRAG", 0x5000_9402), IoctlCommand("BTRFS_IOC_DEFRAG_RANGE", 0x4030_9410),
        // vfat: "equivalent to a chmod()" (ATTR_RO and the write bits, hidden, system),
        // owner only, a read-only fd enough: the one mode change the chmod refusals left.
        IoctlCommand("FAT_IOCTL_SET_ATTRIBUTES", 0x4004_7211),
    ]

    /// The command shares the invoker's uid and PID namespace, and the kernel lets a
    /// process of one uid change the limits (prlimit64: RLIMIT_CPU kills, RLIMIT_FSIZE
    /// kills at the next write), priority, scheduling class, CPU affinity and I/O
    /// priority of every other process of that uid (Landlock has no hook there): the
    /// invoker's shell, other runs' supervisors. So these calls are allowed only on
    /// the caller itself, pid 0 (glibc's setrlimit, nice, sched_setaffinity(0, …) pass
    /// it); a thread-level call with a tid (pthread_setaffinity_np,
    /// pthread_setschedparam, renice -p $$) gets EPERM.
    static let onlyOnItself: [ArgumentFence] = {
        let pidZero = ArgumentFence.Form.equal(0, 0)
        var fences = ["prlimit64", "sched_setscheduler", "sched_setparam", "sched_setattr", "sched_setaffinity"].map {
            ArgumentFence(syscall: $0, allowed: [[pidZero]], refused: [[.notEqual(0, 0)]])
        }
        // setpriority(PRIO_PROCESS = 0, who = 0), ioprio_set(IOPRIO_WHO_PROCESS = 1, who = 0).
        for (name, which) in [("setpriority", UInt64(0)), ("ioprio_set", 1)] {
            fences.append(ArgumentFence(syscall: name, allowed: [[.equal(0, which), .equal(1, 0)]],
                                        refused: [[.notEqual(0, which)], [.equal(0, which), .notEqual(1, 0)]]))
        }
        // fcntl(fd, F_SETLEASE = 1024): a lease on a file in an ro bind the invoker owns
        // holds every writer of it on the host for up to lease-break-time. The kernel
        // reads cmd as 32 bits, so the refusal masks the upper ones off; the allowed
        // forms are every cmd below 2048 but 1024 with them clear (Linux has none
        // above 1024 + 64); a higher one gets the filter's default.
        var fcntlAllowed: [[ArgumentFence.Form]] = [[.masked(1, ~UInt64(0x3ff), 0)]]
        for k in 0..<10 { fcntlAllowed.append([.masked(1, ~(UInt64(1) << k - 1), 1024 + UInt64(1) << k)]) }
        fences.append(ArgumentFence(syscall: "fcntl", allowed: fcntlAllowed, refused: [[.masked(1, 0xffff_ffff, 1024)]]))
        return fences
    }()

    /// socketpair, when unix sockets are fenced: a datagram socket of a pair can be
    /// re-aimed by sendto or connect at any datagram socket on the host by path
    /// (/dev/log, journald, a notify socket), past the socket(AF_UNIX) refusal. Only
    /// AF_UNIX stream and seqpacket pairs stay (a connected pair cannot be re-aimed:
    /// EISCONN); SOCK_DGRAM and SOCK_RAW (which AF_UNIX makes a datagram socket) are
    /// refused whatever the SOCK_NONBLOCK/SOCK_CLOEXEC flags, as is any other family.
    static let datagramPairs: ArgumentFence = {
        let unix = ArgumentFence.Form.equal(0, UInt64(SocketFamily.unix.number))
        let type = { (t: UInt64) in ArgumentFence.Form.masked(1, 0xf, t) }
        return ArgumentFence(syscall: "socketpair", allowed: [[unix, type(1)], [unix, type(5)]],
                             refused: [[.notEqual(0, UInt64(SocketFamily.unix.number))], [unix, type(2)], [unix, type(3)]])
    }()
}

/// A call allowed only in some forms of its arguments. Each form is an AND of
/// comparisons on the whole 64-bit register, so an allowed form has one reading
/// only (the kernel truncates int arguments: 1 << 32 | pid is pid to it, but not 0
/// here). `allowed` and `refused` never overlap (libseccomp does not say which of
/// two matching conditional rules wins); a form in neither gets the filter's default.
struct ArgumentFence {
    enum Form {
        case equal(UInt32, UInt64), notEqual(UInt32, UInt64)
        /// (argument & mask) == value.
        case masked(UInt32, UInt64, UInt64)
        var arg: SeccompArgPlan {
            switch self {
            case .equal(let i, let v): SeccompArgPlan(index: i, op: .equal, value: v, valueTwo: 0)
            case .notEqual(let i, let v): SeccompArgPlan(index: i, op: .notEqual, value: v, valueTwo: 0)
            case .masked(let i, let mask, let v): SeccompArgPlan(index: i, op: .maskedEqual, value: mask, valueTwo: v)
            }
        }
    }
    var syscall: String
    /// Allowed where the profile allowed the call.
    var allowed: [[Form]]
    /// Refused with EPERM whatever the profile says.
    var refused: [[Form]]
    /// Handed to the supervisor (USER_NOTIF) where the profile allowed the call, which
    /// answers it itself (`NestedSeccomp.explicitTimes`).
    var notified: [[Form]] = []
    var origin: String = NestedSeccomp.fenceOrigin
}

extension Context {
    /// `process.isolation` against what the host allows: nested or namespaces, and why.
    /// The fallback only on errnos that mean "not permitted here"
    /// (`NamespaceRefusal.allowsNested`); any other refuses the run, naming it.
    func chooseIsolation() throws -> (mode: Isolation, reason: String)? {
        switch policy.process.isolation {
        case .namespaces: return nil
        case .nested: return (.nested, "process.isolation = \"nested\"")
        case .namespacesOrNested:
            if case .blocked(let refusal) = host.namespaces {
                guard refusal.allowsNested else {
                    let names = refusal.blockingErrnos
                    throw PlanError(key: "process.isolation", message: "namespaces cannot be made here (\(refusal.why)) with \(names.joinedText(separator: ", ")), which does not mean they are not permitted here (only \(NamespaceRefusal.notPermitted.values.sorted().joinedText(separator: ", ")) do): \"namespaces-or-nested\" does not fall back to nested on a failure of the moment"
                        + (names.contains("ENOSPC") ? " (ENOSPC: the user's namespace count, user.max_*_namespaces, is exhausted, which another process of the same user can cause on purpose to force the weaker isolation)" : "")
                        + ". Retry, or set process.isolation = \"nested\"")
                }
                return (.nested, "process.isolation = \"namespaces-or-nested\" and namespaces cannot be made here: \(refusal.why)")
            }
            return (.namespaces, host.namespaces == .available
                ? "process.isolation = \"namespaces-or-nested\" and namespaces can be made here"
                : "process.isolation = \"namespaces-or-nested\"; namespaces were not probed, so they are assumed")
        }
    }

    /// What a nested run refuses outright: no Landlock (the only filesystem fence
    /// left without a private root) and a network mode that needs a namespace.
    func checkNested() throws {
        if policy.landlock.mode == .off || host.landlockABI < 1 {
            throw PlanError(key: "landlock.mode", message: policy.landlock.mode == .off
                ? "nested isolation needs Landlock: without a private root it is the only fence on the filesystem; set landlock.mode = \"enforce\""
                : "nested isolation needs Landlock (without a private root it is the only fence on the filesystem), and this kernel has none")
        }
        // No user namespace: the command runs as the invoker. Another user, or
        // capabilities kept (real ones on the host, not a namespace's), would be
        // silently different from what the policy says: refused.
        if policy.process.user != .invoker || (policy.process.group.map { $0 != .invoker } ?? false) {
            throw PlanError(key: policy.process.user != .invoker ? "process.user" : "process.group", message: "nested isolation has no user namespace and runs the command as the invoker (uid \(host.invokerUID)); another user or group cannot be applied. Remove it, or run with namespaces")
        }
        if !policy.capabilities.keep.isEmpty {
            throw PlanError(key: "capabilities.keep", message: "nested isolation has no user namespace: a kept capability would be a real one on the host, not one of the run's own namespace. Keep none (capabilities.keep = []), or run with namespaces")
        }
        if policy.network.mode != .none {
            throw PlanError(key: "network.mode", message: "\"\(policy.network.mode.rawValue)\" needs a network namespace of the run's own, which nested isolation does not have; use network.mode = \"none\" (enforced by the seccomp filter and Landlock) or namespaces")
        }
    }

    /// Nested, the mount steps are only looked at: binds become Landlock rules on their
    /// host paths (a bind whose destination is not its source cannot be one), and what
    /// only a private root gives is either accepted (`nested_without`) or refuses the
    /// run. Returns the steps the executor still needs (binds, to open and check their
    /// sources) and the gaps the policy accepts that this plan has.
    func nestedMounts(_ mounts: [MountStep], abi: Int) throws -> (mounts: [MountStep], gaps: [NestedGap: String]) {
        let accepted = Set(policy.process.nestedWithout)
        var gaps: [NestedGap: String] = [:]
        var refused: [String] = []
        let binds = mounts.filter { $0.kind == .bind }
        if let moved = binds.first(where: { $0.source != $0.destination }) {
            throw PlanError(key: moved.origin, message: "\(moved.summary): nested isolation has no private root to bind it elsewhere; its Landlock rule would be on \(moved.source ?? "?"), not \(moved.destination)")
        }
        let protects = mounts.filter { $0.kind == .protect }.map(\.destination)
        if !protects.isEmpty {
            let what = "filesystem.protect: \(protects.joinedText(separator: ", ")) stay writable (Landlock cannot take back a right granted above them)"
            if accepted.contains(.protect) { gaps[.protect] = what } else { refused.append(what) }
        }
        // An ro bind at or beneath an rw bind: Landlock grants a file the union of the
        // rules on its path up to /, so the rw rule above gives write whatever the rule
        // on the ro bind says (red team 6, G1: `.git` bound ro in a writable workspace
        // was written, where a namespaced run's read-only mount gives EROFS). An rw
        // bind beneath an ro one only adds, as its mount would.
        let shadowed = Context.roWithinRw(binds)
        if !shadowed.isEmpty {
            let what = "filesystem.ro within filesystem.rw: \(shadowed.map { "\($0.ro) (beneath \($0.rw))" }.joinedText(separator: ", ")) stay writable (Landlock grants an rw bind's rights to everything beneath it and cannot take them back)"
            if accepted.contains(.roWithinRw) { gaps[.roWithinRw] = what } else { refused.append(what) }
        }
        let readable = binds.map(\.destination)
        let masks = mounts.filter { m in m.kind == .mask && readable.contains { PathText.isBeneath(m.destination, $0) } }
            .map(\.destination)
        if !masks.isEmpty {
            let what = "filesystem.mask: \(masks.joinedText(separator: ", ")) stay visible (they lie beneath a path the command may read; Landlock cannot hide them)"
            if accepted.contains(.mask) { gaps[.mask] = what } else { refused.append(what) }
        }
        if abi < LandlockScope.signal.abi {
            let what = "Landlock scopes (ABI \(LandlockScope.signal.abi); this kernel has \(abi)): the command could signal the invoker's other processes and reach abstract unix sockets outside"
            if accepted.contains(.scopes) { gaps[.scopes] = what } else { refused.append(what) }
        }
        if accepted.contains(.unixSockets) {
            gaps[.unixSockets] = "unix sockets anywhere on the host can be connected to by path (Landlock does not mediate connect)"
        }
        if accepted.contains(.ipc) {
            gaps[.ipc] = "System V IPC and POSIX message queues of the invoker's IPC namespace are reachable"
        }
        if accepted.contains(.timestamps) {
            gaps[.timestamps] = "the access and modification times of any file the invoker owns, anywhere on the host, can be set (utimensat, utimes: Landlock does not cover them)"
        }
        if !refused.isEmpty {
            throw PlanError(key: "process.isolation", message: "nested isolation cannot fence what this policy asks for: \(refused.joinedText(separator: "; ")). Accept each in process.nested_without (\(NestedGap.allCases.map(\.rawValue).joinedText(separator: ", "))), or run with namespaces")
        }
        return (mounts.filter { $0.kind == .bind || $0.kind == .symlink }, gaps)
    }

    /// Each ro bind that lies at or beneath an rw bind, with the innermost such rw bind
    /// (nested binds are at their sources' paths, which have no symlink on them: the
    /// executor opens each so).
    static func roWithinRw(_ binds: [MountStep]) -> [(ro: String, rw: String)] {
        let writable = binds.filter { $0.kind == .bind && !$0.readOnly }.map(\.destination)
        return binds.compactMap { b in
            guard b.kind == .bind, b.readOnly,
                  let rw = writable.filter({ PathText.isBeneath(b.destination, $0) }).max(by: { $0.utf8.count < $1.utf8.count }) else { return nil }
            return (b.destination, rw)
        }
    }

    /// Nested Landlock: every rule on a host path — the binds' sources, and the
    /// harmless device nodes a private /dev would hold — and nothing that exists only
    /// inside a private root (tmpfs, /proc, /dev, the in-memory files stay denied).
    /// The scopes keep signals and abstract unix sockets inside; with network none,
    /// no TCP port may be bound or connected.
    func nestedLandlock(_ plan: LandlockPlan, binds: [ResolvedBind]) -> LandlockPlan {
        var plan = plan
        let handled = plan.handledAccessFS
        var rules = plan.rules.filter { r in r.hostPath != nil }
        for node in Context.nestedDeviceNodes where host.files.kind(of: node) == .other {
            rules.append(LandlockRule(path: node, hostPath: node, access: [.readFile, .writeFile].filter(handled.contains)))
        }
        plan.rules = rules
        if plan.abi >= 4 { plan.connectTCP = []; plan.bindTCP = [] }
        if plan.abi >= LandlockScope.signal.abi {
            plan.scopes = Array(Set(plan.scopes).union(LandlockScope.allCases.filter { $0.abi <= plan.abi }))
                .sorted { $0.rawValue < $1.rawValue }
        }
        return plan
    }

    static let nestedDeviceNodes = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]

    /// What the seccomp filter carries in place of the namespaces: no socket family
    /// that reaches a network (none is the only mode nested allows), no unix sockets
    /// and no System V IPC unless the policy accepts them.
    func nestedSeccomp() -> NestedSeccomp {
        let accepted = Set(policy.process.nestedWithout)
        var keep: Set<SocketFamily> = [.alg]
        if accepted.contains(.unixSockets) { keep.insert(.unix) }
        let families = (policy.seccomp.socketFamilies ?? SocketFamily.allCases).filter(keep.contains).sorted()
        return NestedSeccomp(families: families,
                             deny: NestedSeccomp.alwaysDenied + (accepted.contains(.ipc) ? [] : NestedSeccomp.ipcCalls),
                             fences: NestedSeccomp.onlyOnItself + (accepted.contains(.unixSockets) ? [] : [NestedSeccomp.datagramPairs])
                                + (accepted.contains(.timestamps) ? [] : NestedSeccomp.explicitTimes))
    }

    /// Every layer of a namespaced run, and what a nested one has of each.
    func nestedLayers(plan: RunPlan, gaps: [NestedGap: String], droppedMounts: [MountStep]) -> [IsolationLayer] {
        func list(_ xs: [String]) -> String { xs.isEmpty ? "none" : xs.joinedText(separator: ", ") }
        var layers: [IsolationLayer] = []
        let ll = plan.landlock
        let binds = plan.mounts.filter { $0.kind == .bind }
        let writableRo = Set(Context.roWithinRw(binds).map(\.ro))
        layers.append(IsolationLayer(name: "landlock", applied: true, how:
            "ABI \(ll.abi): rules on the host paths of the binds (\(list(binds.map { "\($0.destination) \($0.readOnly ? (writableRo.contains($0.destination) ? "ro, writable within rw" : "ro") : "rw")" }))) and the device nodes \(list(ll.rules.filter { $0.path.hasPrefix("/dev/") }.map(\.path))); everything else denied"
            + (ll.scopes.isEmpty ? "" : "; scoped: \(list(ll.scopes.map(\.rawValue)))")
            + (ll.connectTCP == [] ? "; no TCP bind or connect" : "")))
        let sc = plan.seccomp
        layers.append(IsolationLayer(name: "seccomp", applied: sc.enabled, how:
            "\(sc.profile ?? "no profile"), \(sc.rules.count) rules; socket families: \(list((sc.socketFamilies ?? []).map(\.rawValue)))"))
        layers.append(IsolationLayer(name: "capabilities", applied: true, how:
            (plan.capabilities.keep.isEmpty ? "every set empty (bounding, permitted, effective, inheritable, ambient)"
                : "every set holds only \(list(plan.capabilities.keep))")
            + "; without CAP_SETPCAP the bounding set and securebits stay as they are, and no_new_privs keeps an exec from gaining more"))
        layers.append(IsolationLayer(name: "no_new_privs", applied: true, how: "set before Landlock and seccomp"))
        layers.append(IsolationLayer(name: "rlimits", applied: true, how: list(plan.process.rlimits.map(\.name))))
        layers.append(IsolationLayer(name: "cgroup", applied: plan.resources.needsCgroup, how: plan.resources.needsCgroup
            ? IsolationLayer.cgroupPlanned : IsolationLayer.cgroupNotAsked))
        layers.append(IsolationLayer(name: "network", applied: true, how:
            "mode none without a network namespace: socket(2) of every network family and io_uring refused by the seccomp filter" + (ll.connectTCP == [] ? ", TCP bind and connect by Landlock" : "")))
        layers.append(IsolationLayer(name: "unix_sockets", applied: gaps[.unixSockets] == nil, how:
            gaps[.unixSockets] ?? "socket(AF_UNIX), and socketpair but for AF_UNIX stream and seqpacket pairs (a datagram one can be re-aimed by sendto or connect), refused by the seccomp filter (a unix socket anywhere on the host could be reached by path)"))
        layers.append(IsolationLayer(name: "ipc_namespace", applied: gaps[.ipc] == nil, how:
            gaps[.ipc] ?? "no IPC namespace; System V IPC and POSIX message queue calls refused by the seccomp filter"))
        layers.append(IsolationLayer(name: "user_namespace", applied: false, how:
            "the command runs as the invoker's uid \(plan.process.uid) and gid \(plan.process.gid), supplementary groups kept; no uid of its own. "
            + "What the kernel lets a process do to what its uid owns, and Landlock does not cover, is refused by the seccomp filter (EPERM): "
            + "changing any file's mode, owner, ACL or extended attributes (chmod, chown, setxattr, removexattr in every form, fd ones included), "
            + "a lease on a file (fcntl F_SETLEASE), the ioctl commands that change an inode through a read-only fd or make a btrfs subvolume (chattr's FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR, fs-verity, fscrypt policies and keys, \((plan.seccomp.refusedIoctls ?? []).count) commands in seccomp.refusedIoctls, by a second filter), and limits, priority, scheduling, CPU affinity or I/O priority of any process but itself "
            + "(prlimit64, sched_setscheduler, sched_setparam, sched_setattr, sched_setaffinity only with pid 0; setpriority and ioprio_set only on the process itself, who 0: a thread id gets EPERM)"))
        layers.append(IsolationLayer(name: "timestamps", applied: gaps[.timestamps] == nil, how: gaps[.timestamps].map { $0 + " (accepted: nested_without)" } ?? (
            plan.seccomp.explicitTimesViaSupervisor == true
                ? "Landlock does not cover file times: utimensat with times NULL (now) runs in the kernel; with explicit times the supervisor resolves the path itself and sets them only on a file of the command's uid beneath a writable bind (\(list(binds.filter { !$0.readOnly }.map(\.destination)))), else EPERM; utime, utimes and futimesat with explicit times get EPERM"
                : "utimensat, utimes, utime and futimesat are not allowed by the profile")))
        layers.append(IsolationLayer(name: "mount_namespace", applied: false, how:
            "no private root: paths outside the binds are denied by Landlock, but their names and metadata can still be read (stat, readlink, getxattr, listxattr; no contents); "
            + "inotify_add_watch and fanotify, which would report names created outside, are refused by the seccomp filter"))
        layers.append(IsolationLayer(name: "pid_namespace", applied: false, how:
            "the invoker's PID namespace: Landlock keeps the command from tracing or (with its signal scope) signalling processes outside; the processes it leaves behind (double-forked, setsid) are reparented to the run's reaper, a child subreaper, which kills them by pidfd when the command ends"))
        layers.append(IsolationLayer(name: "uts_namespace", applied: false, how: "the invoker's hostname, not process.hostname"))
        layers.append(IsolationLayer(name: "cgroup_namespace", applied: false, how: "/proc/self/cgroup would show the host's layout (/proc is denied)"))
        let dropped: [(String, MountKind, String)] = [
            ("tmpfs", .tmpfs, "not mounted; the path is not writable (Landlock grants nothing there)"),
            ("proc", .proc, "no private /proc; /proc is denied by Landlock"),
            ("dev", .dev, "no private /dev; only the device nodes in the Landlock rules"),
            ("in_memory_files", .file, "not written; /etc/resolv.conf and /etc/hosts are the host's where /etc is bound"),
            ("pin", .pin, "nothing to pin without mounts"),
        ]
        for (name, kind, how) in dropped {
            let paths = droppedMounts.filter { $0.kind == kind }.map(\.destination)
            if !paths.isEmpty { layers.append(IsolationLayer(name: name, applied: false, how: "\(list(paths)): \(how)")) }
        }
        let masks = droppedMounts.filter { $0.kind == .mask }.map(\.destination)
        if let how = gaps[.mask] {
            layers.append(IsolationLayer(name: "mask", applied: false, how: how + " (accepted: nested_without)"))
        } else if !masks.isEmpty {
            layers.append(IsolationLayer(name: "mask", applied: true, how: "\(list(masks)): outside every bind, so denied by Landlock"))
        }
        if let how = gaps[.protect] { layers.append(IsolationLayer(name: "protect", applied: false, how: how + " (accepted: nested_without)")) }
        if let how = gaps[.roWithinRw] { layers.append(IsolationLayer(name: "ro_within_rw", applied: false, how: how + " (accepted: nested_without)")) }
        if let how = gaps[.scopes] { layers.append(IsolationLayer(name: "scopes", applied: false, how: how + " (accepted: nested_without)")) }
        return layers
    }
}

extension IsolationLayer {
    static let cgroupPlanned = "the run's limits, in a cgroup of its own made at run time where one can be made (delegated); where none can, refused unless every limit is best_effort (the result says whether it was made)"
    static let cgroupNotAsked = "no [resources] limit asked for: no cgroup of its own"
    static let cgroupMissing = "no cgroup could be made here (none delegated): every limit was best_effort and is in notApplied"
}

extension IsolationPlan {
    /// The layers as the run had them: `cgroup` applied only when a cgroup of the
    /// run's own was made and the command placed in it (nested, a host without a
    /// delegated cgroup runs best-effort limits without one).
    public func atRunTime(cgroup made: Bool) -> IsolationPlan {
        var out = self
        for i in out.layers.indices where out.layers[i].name == "cgroup" && out.layers[i].applied != made {
            out.layers[i].applied = made
            if !made && out.layers[i].how == IsolationLayer.cgroupPlanned { out.layers[i].how = IsolationLayer.cgroupMissing }
        }
        return out
    }
}

extension RunPlan {
    /// This run gets nested isolation: no namespaces, no private root.
    public var isNested: Bool { isolation?.mode == .nested }
}
