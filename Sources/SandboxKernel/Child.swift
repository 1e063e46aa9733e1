import CSandbox
import Glibc

/// Everything the child runner needs, in Swift form. `Child.spawn` flattens it into
/// the C `sbx_spec` (every string and array allocated before clone3, freed after) so
/// the child itself never allocates.
public struct ChildSpec {
    public enum Mount {
        /// A recursive bind of `source`, resolved by the child with no symlink on the
        /// path (beneath its working directory when `beneathCwd`), which must be the
        /// object `identity` names (what the supervisor opened and checked); nil source:
        /// an optional source that is absent, skipped.
        case bind(source: String?, beneathCwd: Bool, identity: (device: UInt64, inode: UInt64),
                  destination: String, readOnly: Bool)
        case tmpfs(destination: String, options: String, readOnly: Bool)
        case proc(destination: String)
        case dev(destination: String)
        case symlink(target: String, destination: String)
        case protect(destination: String, optional: Bool = true)
        case pin(destination: String)
        case mask(destination: String)
        /// A detached mount the supervisor prepared (an idmapped writable bind) moved
        /// into place; a directory or a file, as the tree's root is.
        case moveFD(fd: Int32, destination: String)
        /// A read-only file holding `content`, on a tmpfs of its own (resolv.conf, hosts).
        case file(content: String, destination: String)
    }

    public var cloneFlags: UInt64 = 0
    /// Nested isolation: a plain clone (no namespaces, `cloneFlags` unused) that runs
    /// the identity, capability and fence steps and execs the command itself.
    public var nested = false
    /// Tests only: see `TestHooks.statusBeforeSweep`.
    public var testStatusBeforeSweep = false
    public var cgroupFD: Int32 = -1
    public var cgroupJoinFDs: [Int32] = []
    public var loopbackUp = false
    /// The network namespace may be one a server's spawner made ahead (owned by the
    /// initial user namespace): no network capability kept.
    public var premadeNetworkNamespaceOK = false
    /// A network namespace a server prepared for this run (`PreparedNamespace`),
    /// taken instead of the spawner's when `premadeNetworkNamespaceOK`; -1: none.
    public var preparedNetworkNamespace: Int32 = -1
    /// A cold run's network namespace made ahead (``NetworkNamespaceAhead``), which
    /// the init is cloned in instead of with `CLONE_NEWNET` (the spawn fails rather
    /// than clone it in the caller's); -1: none. Borrowed: the caller closes it.
    public var joinNetworkNamespace: Int32 = -1
    public var uidMap: String? = nil
    public var gidMap: String? = nil
    /// The effective uid clone3 runs with (a root invoker's run with a uid of its
    /// own): the new user namespace's owner; its maps are written by the supervisor.
    public var userNamespaceOwner: UInt32? = nil
    public var staging: String = ""
    public var mounts: [Mount] = []
    public var hostname: String = "sandbox"
    public var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)] = []
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var newSession = true
    public var workdir: String = "/"
    public var argv: [String] = []
    public var env: [String] = []
    public var searchPath: String = "/usr/bin:/bin"
    /// `[binary]`: the checked executable, run with `execveat(fd, "", argv,
    /// AT_EMPTY_PATH)`; nil: `execve` of `argv[0]` by path.
    public var checkedExec: CheckedExec? = nil
    public var capKeep: UInt64 = 0
    public var applyCaps = true
    public var landlockFD: Int32 = -1
    /// `landlock_restrict_self` flags: LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (ABI 7)
    /// when the denial account reads Landlock's audit records.
    public var landlockRestrictFlags: UInt32 = 0
    public var landlockInner: [(path: String, access: UInt64)] = []
    public var seccompFilter: [UInt8]? = nil
    public var seccompFlags: UInt32 = 0
    /// A second filter, installed after `seccompFilter` without flags (the
    /// unknown-number prefix when the first is logged: SeccompProgram.unknownNumberFilter).
    public var seccompUnlogged: [UInt8]? = nil
    /// The fence (SeccompProgram.fence), installed after both.
    public var seccompFence: [UInt8]? = nil
    public var notifySocket: Int32 = -1
    public var syncFD: Int32 = -1
    public var errorFD: Int32 = -1
    public var statusFD: Int32 = -1
    /// The command's stdin, stdout and stderr (a server's client's), dup'ed onto 0, 1,
    /// 2 by the init; nil: the supervisor's own 0, 1, 2. Borrowed: the caller keeps
    /// them open until `spawn` returns and closes them.
    public var stdio: (Int32, Int32, Int32)? = nil
    /// The reaper (PID 1 inside, a copy of this process that never execs) overwrites
    /// its copy of this process's argv strings with "sandbox-init", so
    /// `/proc/1/cmdline` inside does not show the supervisor's command line.
    public var hideSupervisorArgv = true
    /// Built ahead of its command (a server's warm path): the init's end of a unix
    /// stream socket on which it waits, its root built, for the command
    /// (``Child/sendCommand(_:on:)``), whose fields then replace `argv`, `env`,
    /// `searchPath`, `checkedExec` and `stdio`. -1: the command is in this spec.
    public var commandSocket: Int32 = -1

    public init() {}

    public static let newNamespaces: UInt64 =
        SBX_CLONE_NEWNS | SBX_CLONE_NEWPID | SBX_CLONE_NEWIPC | SBX_CLONE_NEWUTS | SBX_CLONE_NEWCGROUP
    public static let newNet: UInt64 = SBX_CLONE_NEWNET
    /// Mount steps a spec may have: each may hold an fd the child keeps (SBX_MAX_KEEP).
    public static let maxMounts = Int(SBX_MAX_KEEP) - 16
    public static let newUser: UInt64 = SBX_CLONE_NEWUSER
}

/// The step a child failed at, as reported over the error pipe.
public struct ChildFailure: Sendable, Equatable {
    public var step: Int32
    public var index: Int32
    public var errno: Int32

    public init(step: Int32, index: Int32, errno: Int32) { self.step = step; self.index = index; self.errno = errno }

    public var isExec: Bool { step == Int32(SBX_STEP_EXEC.rawValue) }
    /// execve found nothing to run (127), as opposed to something it may not run (126).
    public var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }
    public var isSymlinkLoop: Bool { errno == ELOOP }
    /// A bind source that is no longer the object the supervisor checked.
    public var isSourceChanged: Bool { errno == ESTALE }
    /// `[binary]`: the checked file was written to between its hash and the exec.
    public var isExecutableChanged: Bool { step == Int32(SBX_STEP_EXEC_CHECK.rawValue) }
    public var isChdir: Bool { step == Int32(SBX_STEP_CHDIR.rawValue) }
    public var isRlimit: Bool { step == Int32(SBX_STEP_RLIMIT.rawValue) || step == Int32(SBX_STEP_PAYLOAD_RLIMIT.rawValue) }
    /// The filter could not be loaded because one above already has a listener
    /// (EBUSY: the kernel allows one per filter chain).
    public var isSecondListener: Bool { step == Int32(SBX_STEP_SECCOMP.rawValue) && errno == EBUSY }

    /// The 12-byte record the child writes on the error pipe.
    public init?(record: [UInt8]) {
        guard record.count == 12 else { return nil }
        (step, index, errno) = record.withUnsafeBytes {
            ($0.load(fromByteOffset: 0, as: Int32.self), $0.load(fromByteOffset: 4, as: Int32.self),
             $0.load(fromByteOffset: 8, as: Int32.self))
        }
    }
    public var isMount: Bool { step == Int32(SBX_STEP_MOUNT.rawValue) }

    /// A short name for the step, for messages that are not about a mount. Every code
    /// the child sends has one (ChildStepTests); Docs/architecture.md's step table
    /// uses these names.
    public var stepName: String {
        switch UInt32(step) {
        case SBX_STEP_SIGNALS.rawValue: return "reset signal \(index < 0 ? "mask" : "disposition \(index)")"
        case SBX_STEP_STDIO.rawValue: return "install stdio descriptor \(index)"
        case SBX_STEP_KEEP_LIST.rawValue:
            return "keep \(index) descriptors across the first close (at most \(SBX_MAX_KEEP))"
        case SBX_STEP_CLOSE_FDS.rawValue: return "close inherited descriptors"
        case SBX_STEP_PDEATHSIG.rawValue: return "PR_SET_PDEATHSIG"
        case SBX_STEP_SYNC.rawValue: return "wait for supervisor"
        case SBX_STEP_CGROUP_JOIN.rawValue: return "join cgroup (v1)"
        case SBX_STEP_CGROUP_NAMESPACE.rawValue: return "unshare the cgroup namespace"
        case SBX_STEP_USERNS_MAP.rawValue:
            return ["write /proc/self/setgroups", "write /proc/self/uid_map", "write /proc/self/gid_map"][Int(max(0, min(2, index)))]
        case SBX_STEP_HOSTNAME.rawValue: return "sethostname"
        case SBX_STEP_LOOPBACK.rawValue: return "bring up lo"
        case SBX_STEP_MOUNT_PRIVATE.rawValue: return "make mounts private"
        case SBX_STEP_ROOT_TMPFS.rawValue: return "mount the root tmpfs"
        case SBX_STEP_MOUNT.rawValue: return "mount \(index)"
        case SBX_STEP_MASK_HELPER.rawValue: return "remove the mask helper file"
        case SBX_STEP_ROOT_READONLY.rawValue: return "make the root read-only"
        case SBX_STEP_PIVOT_ROOT.rawValue: return "pivot_root"
        case SBX_STEP_COMMAND.rawValue: return index < 0 ? "receive the command" : "install stdio descriptor \(index) (the command's)"
        case SBX_STEP_PAYLOAD_STACK.rawValue: return "map the payload's stack"
        case SBX_STEP_RLIMIT.rawValue: return "setrlimit"
        case SBX_STEP_REAPER_NAME.rawValue: return "name the reaper"
        case SBX_STEP_REAPER_SIGNALS.rawValue: return "block the reaper's signals"
        case SBX_STEP_SUBREAPER.rawValue: return "become the run's subreaper"
        case SBX_STEP_FORK.rawValue: return "fork the payload"
        case SBX_STEP_REAPER_DUMPABLE.rawValue: return "make the reaper not dumpable"
        case SBX_STEP_REAPER_CPU_LIMIT.rawValue: return "lift the reaper's CPU limit"
        case SBX_STEP_REAPER_CLOSE_FDS.rawValue: return "close the reaper's descriptors"
        case SBX_STEP_PAYLOAD_SIGNALS.rawValue: return "unblock the payload's signals"
        case SBX_STEP_PAYLOAD_PDEATHSIG.rawValue: return "die with the reaper"
        case SBX_STEP_SETSID.rawValue: return "setsid"
        case SBX_STEP_PAYLOAD_RLIMIT.rawValue: return "setrlimit (the payload's, nested)"
        case SBX_STEP_PAYLOAD_OOM_SCORE.rawValue: return "write /proc/self/oom_score_adj (the payload's, nested)"
        case SBX_STEP_CAPS_BOUNDING.rawValue: return "drop capability \(index) from the bounding set"
        case SBX_STEP_SECUREBITS.rawValue: return "lock securebits"
        case SBX_STEP_SETGROUPS.rawValue: return "setgroups"
        case SBX_STEP_SETGID.rawValue: return "setgid"
        case SBX_STEP_SETUID.rawValue: return "setuid"
        case SBX_STEP_CAPS.rawValue: return "set capabilities"
        case SBX_STEP_SHARED_UNDUMPABLE.rawValue: return "make the memory shared with the reaper not dumpable"
        case SBX_STEP_KEYRING.rawValue: return "join a fresh session keyring"
        case SBX_STEP_NO_NEW_PRIVS.rawValue: return "PR_SET_NO_NEW_PRIVS"
        case SBX_STEP_CHDIR.rawValue: return "chdir"
        case SBX_STEP_LANDLOCK.rawValue: return index < 0 ? "landlock_restrict_self" : "landlock_add_rule"
        case SBX_STEP_PAYLOAD_CLOSE_FDS.rawValue: return "close the payload's descriptors"
        case SBX_STEP_EXEC_CHECK.rawValue: return index == 1 ? "check the script is unchanged" : "check the executable is unchanged"
        case SBX_STEP_SECCOMP.rawValue: return "load the seccomp filter"
        case SBX_STEP_NOTIFY_SEND.rawValue: return "hand the seccomp listener to the supervisor"
        case SBX_STEP_EXEC.rawValue: return "execve"
        case SBX_STEP_PAYLOAD_AFFINITY.rawValue: return "restore the payload's CPU affinity"
        default: return "step \(step)"
        }
    }
}

/// The descriptors and argv of a `[binary]`-checked command: what the child execs,
/// and what it checks is unchanged first (`ExecutableFile.Opened.stamp`).
public struct CheckedExec {
    public var fd: Int32
    public var stamp: ExecutableFile.Stamp
    /// `fd` holds a read lease (``ExecutableFile/Fence/lease``): the child checks it
    /// is unbroken right before `execveat`.
    public var leased: Bool
    /// `fd`'s path inside the sandbox: the child reopens it there (same inode, no
    /// symlinks) and execs that, so the command's `/proc/self/exe` is the sandbox's
    /// (read-only) mount of the file, not the host's. nil: `fd` itself (a sealed copy).
    public var view: String?
    public var argv: [String]
    /// A `#!` script run by its checked interpreter (`fd`) as `/dev/fd/<scriptFD>`.
    public var script: (fd: Int32, stamp: ExecutableFile.Stamp)?
    public init(fd: Int32, stamp: ExecutableFile.Stamp, leased: Bool, view: String?, argv: [String],
                script: (fd: Int32, stamp: ExecutableFile.Stamp)?) {
        self.fd = fd; self.stamp = stamp; self.leased = leased; self.view = view; self.argv = argv; self.script = script
    }
}

/// What a sandbox built ahead runs (``ChildSpec/commandSocket``): the command's
/// fields of a spec.
public struct ChildCommand {
    public var argv: [String]
    public var env: [String]
    public var searchPath: String
    public var checkedExec: CheckedExec?
    /// Borrowed: sent as they are, the caller closes its own.
    public var stdio: (Int32, Int32, Int32)
    public init(argv: [String], env: [String], searchPath: String, checkedExec: CheckedExec?, stdio: (Int32, Int32, Int32)) {
        self.argv = argv; self.env = env; self.searchPath = searchPath; self.checkedExec = checkedExec; self.stdio = stdio
    }
}

public enum Child {
    /// Whether a server's spawner clones this process's inits (`sandbox serve`).
    public static var spawnerRunning: Bool { sbx_spawner_running() == 1 }

    /// clone3 the sandbox init and run `spec` in it. Must be called on a thread that
    /// outlives the run (PDEATHSIG is tied to the calling thread).
    public static func spawn(_ spec: ChildSpec) throws(KernelError) -> (pid: Int32, pidfd: Int32) {
        var arena = CArena()
        defer { arena.free() }

        var c = sbx_spec()
        c.clone_flags = spec.cloneFlags
        c.nested = spec.nested ? 1 : 0
        c.test_status_before_sweep = spec.testStatusBeforeSweep ? 1 : 0
        c.cgroup_fd = spec.cgroupFD
        c.cgroup_join_fds = arena.array(spec.cgroupJoinFDs)
        c.n_cgroup_join_fds = spec.cgroupJoinFDs.count
        c.loopback_up = spec.loopbackUp ? 1 : 0
        c.premade_netns_ok = spec.premadeNetworkNamespaceOK ? 1 : 0
        c.netns_fd = spec.preparedNetworkNamespace
        c.join_netns_fd = spec.joinNetworkNamespace
        c.uid_map = spec.uidMap.map { arena.string($0) }
        c.gid_map = spec.gidMap.map { arena.string($0) }
        c.has_userns_owner = spec.userNamespaceOwner == nil ? 0 : 1
        c.userns_owner = spec.userNamespaceOwner ?? 0
        c.staging = arena.string(spec.staging)

        let ops: [sbx_mount_op] = spec.mounts.map { m in
            var op = sbx_mount_op()
            op.fd = -1
            switch m {
            case let .bind(source, beneathCwd, identity, destination, readOnly):
                op.kind = Int32(SBX_MOUNT_BIND.rawValue)
                op.source = arena.string(source ?? ""); op.dest = arena.string(destination)
                op.dev = identity.device; op.ino = identity.inode
                op.flags = (readOnly ? SBX_MF_RDONLY : 0) | (beneathCwd ? SBX_MF_BENEATH_CWD : 0) | (source == nil ? SBX_MF_SKIP : 0)
            case let .tmpfs(destination, options, readOnly):
                op.kind = Int32(SBX_MOUNT_TMPFS.rawValue)
                op.dest = arena.string(destination); op.data = arena.string(options)
                op.flags = readOnly ? SBX_MF_RDONLY : 0
            case let .proc(destination):
                op.kind = Int32(SBX_MOUNT_PROC.rawValue); op.dest = arena.string(destination)
            case let .dev(destination):
                op.kind = Int32(SBX_MOUNT_DEV.rawValue); op.dest = arena.string(destination)
            case let .symlink(target, destination):
                op.kind = Int32(SBX_MOUNT_SYMLINK.rawValue)
                op.source = arena.string(target); op.dest = arena.string(destination)
            case let .protect(destination, optional):
                op.kind = Int32(SBX_MOUNT_PROTECT.rawValue); op.dest = arena.string(destination)
                op.flags = optional ? SBX_MF_OPTIONAL : 0
            case let .pin(destination):
                op.kind = Int32(SBX_MOUNT_PIN.rawValue); op.dest = arena.string(destination)
            case let .mask(destination):
                op.kind = Int32(SBX_MOUNT_MASK.rawValue); op.dest = arena.string(destination)
            case let .moveFD(fd, destination):
                op.kind = Int32(SBX_MOUNT_MOVE_FD.rawValue); op.fd = fd; op.dest = arena.string(destination)
            case let .file(content, destination):
                op.kind = Int32(SBX_MOUNT_FILE.rawValue); op.data = arena.string(content); op.dest = arena.string(destination)
            }
            return op
        }
        c.mounts = arena.array(ops)
        c.n_mounts = ops.count

        c.hostname = arena.string(spec.hostname)
        let limits = spec.rlimits.map { sbx_rlimit(resource: $0.resource, soft: rlim_t($0.soft), hard: rlim_t($0.hard)) }
        c.rlimits = arena.array(limits)
        c.n_rlimits = limits.count
        c.uid = spec.uid
        c.gid = spec.gid
        c.new_session = spec.newSession ? 1 : 0
        c.workdir = arena.string(spec.workdir)
        setCommand(&c, argv: spec.argv, env: spec.env, searchPath: spec.searchPath, checkedExec: spec.checkedExec, arena: &arena)

        c.cap_keep = spec.capKeep
        c.apply_caps = spec.applyCaps ? 1 : 0
        c.landlock_fd = spec.landlockFD
        c.landlock_restrict_flags = spec.landlockRestrictFlags
        let inner = spec.landlockInner.map { sbx_landlock_inner(path: arena.string($0.path), access: $0.access) }
        c.landlock_inner = arena.array(inner)
        c.n_landlock_inner = inner.count
        if let filter = spec.seccompFilter {
            c.seccomp_filter = UnsafeRawPointer(arena.array(filter))
            c.seccomp_len = UInt16(filter.count / 8)
        }
        c.seccomp_flags = spec.seccompFlags
        if let unlogged = spec.seccompUnlogged {
            c.seccomp_unlogged = UnsafeRawPointer(arena.array(unlogged))
            c.seccomp_unlogged_len = UInt16(unlogged.count / 8)
        }
        if let fence = spec.seccompFence {
            c.seccomp_fence = UnsafeRawPointer(arena.array(fence))
            c.seccomp_fence_len = UInt16(fence.count / 8)
        }
        c.notify_sock = spec.notifySocket
        c.sync_fd = spec.syncFD
        c.error_fd = spec.errorFD
        c.status_fd = spec.statusFD
        let stdio = spec.stdio ?? (-1, -1, -1)
        c.stdio_fds = (stdio.0, stdio.1, stdio.2)
        c.command_fd = spec.commandSocket
        if spec.hideSupervisorArgv, let area = argvArea() {
            c.argv_area = area.start
            c.argv_area_len = area.count
        }

        var pidfd: Int32 = -1
        let pid = sbx_spawn(&c, &pidfd)
        if pid < 0 { throw KernelError(operation: "clone3", subject: "sandbox init", errno: -pid) }
        return (pid, pidfd)
    }

    /// The command of a sandbox built ahead, sent to its init over `socket` (the
    /// supervisor's end of ``ChildSpec/commandSocket``'s pair).
    public static func sendCommand(_ command: ChildCommand, on socket: Int32) throws(KernelError) {
        var arena = CArena()
        defer { arena.free() }
        var c = sbx_spec()
        setCommand(&c, argv: command.argv, env: command.env, searchPath: command.searchPath,
                   checkedExec: command.checkedExec, arena: &arena)
        c.stdio_fds = (command.stdio.0, command.stdio.1, command.stdio.2)
        let r = sbx_command_send(socket, &c)
        if r < 0 { throw KernelError(operation: "send the command", subject: "sandbox init", errno: -r) }
    }

    /// The command's fields of `c` (the rest of a spec is the sandbox).
    private static func setCommand(_ c: inout sbx_spec, argv: [String], env: [String], searchPath: String,
                                   checkedExec: CheckedExec?, arena: inout CArena) {
        c.argv = arena.stringArray(argv)
        c.envp = arena.stringArray(env)
        c.search_path = arena.string(searchPath)
        c.exec_fd = -1
        c.script_fd = -1
        guard let e = checkedExec else { return }
        c.exec_fd = e.fd
        c.exec_argv = arena.stringArray(e.argv)
        (c.exec_ctime_sec, c.exec_ctime_nsec, c.exec_size) = (e.stamp.ctimeSec, e.stamp.ctimeNsec, e.stamp.size)
        c.exec_leased = e.leased ? 1 : 0
        c.exec_view = e.view.map { arena.string($0) }
        if let s = e.script {
            c.script_fd = s.fd
            (c.script_ctime_sec, c.script_ctime_nsec, c.script_size) = (s.stamp.ctimeSec, s.stamp.ctimeNsec, s.stamp.size)
        }
    }
}

/// This process's argv strings as the kernel laid them out (argv[0] to the last
/// string's NUL, back to back: the range /proc/<pid>/cmdline reads), or nil when they
/// are not contiguous (someone moved them) or there are none.
func argvArea() -> (start: UnsafeMutablePointer<CChar>, count: Int)? {
    let argc = Int(CommandLine.argc)
    let argv = CommandLine.unsafeArgv
    guard argc > 0, let first = argv[0] else { return nil }
    var end = first
    for i in 0..<argc {
        guard let s = argv[i], s == end else { return nil }
        end = s + strlen(s) + 1
    }
    return (first, first.distance(to: end))
}

/// Owns the C copies of strings and arrays handed to the child runner.
private struct CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    mutating func string(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    mutating func stringArray(_ items: [String]) -> UnsafePointer<UnsafeMutablePointer<CChar>?> {
        let p = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (items.count + 1))!
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: items.count + 1)
        for (i, s) in items.enumerated() { p[i] = UnsafeMutablePointer(mutating: string(s)) }
        p[items.count] = nil
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    mutating func array<T>(_ items: [T]) -> UnsafePointer<T>? {
        if items.isEmpty { return nil }
        let p = malloc(MemoryLayout<T>.stride * items.count)!.bindMemory(to: T.self, capacity: items.count)
        p.initialize(from: items, count: items.count)
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func free() { for b in blocks { Glibc.free(b) } }
}

/// What the sandbox's reaper writes on the status pipe once the run is over
/// (`struct sbx_run_status`): the payload's wait status, and the CPU time of the
/// whole reaped tree (the init's `RUSAGE_CHILDREN` and `RUSAGE_SELF` after it killed
/// and reaped every other process of the run). The kernel's rusage totals are the
/// runtime it scheduled, so the figure is exact where v1's `cpuacct.usage_user` and
/// `usage_sys` are sampled at the tick.
public struct ReaperReport: Equatable, Sendable {
    public var waitStatus: Int32
    public var cpuUserUs: UInt64
    public var cpuSystemUs: UInt64

    /// The bytes one write puts on the pipe (below PIPE_BUF: whole or nothing).
    public static let size = MemoryLayout<sbx_run_status>.size

    public init(waitStatus: Int32, cpuUserUs: UInt64 = 0, cpuSystemUs: UInt64 = 0) {
        self.waitStatus = waitStatus
        self.cpuUserUs = cpuUserUs
        self.cpuSystemUs = cpuSystemUs
    }

    /// The report in `bytes`, nil unless they are exactly one.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        let s = bytes.withUnsafeBytes { $0.loadUnaligned(as: sbx_run_status.self) }
        self.init(waitStatus: s.wait_status, cpuUserUs: s.cpu_user_us, cpuSystemUs: s.cpu_system_us)
    }

    /// As the reaper writes it (tests).
    public var bytes: [UInt8] {
        var s = sbx_run_status()
        s.wait_status = waitStatus
        s.cpu_user_us = cpuUserUs
        s.cpu_system_us = cpuSystemUs
        return withUnsafeBytes(of: &s) { Array($0) }
    }
}
