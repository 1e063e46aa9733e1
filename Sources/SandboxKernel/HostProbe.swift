import CSandbox
import Glibc
import SandboxVocabulary

/// What the running kernel and the invoker look like; the CLI turns this into the
/// planner's `HostFacts`.
public struct HostProbe: Sendable {
    public var arch: String
    public var kernelRelease: String
    public var landlockABI: Int
    public var uid: UInt32
    public var gid: UInt32
    public var cwd: String
    public var home: String
    public var environment: [String: String]

    /// The working directory (getcwd with room for PATH_MAX; Foundation's
    /// `currentDirectoryPath` gives up past 1 025 bytes), or `/` where it has none.
    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        return getcwd(&buf, buf.count) != nil ? String(cString: buf) : "/"
    }

    public static func probe() -> HostProbe {
        var u = utsname()
        uname(&u)
        func field<T>(_ v: T) -> String {
            withUnsafePointer(to: v) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        }
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        let cwd = currentDirectory()
        var home = env["HOME"] ?? "/"
        if home.isEmpty || !home.hasPrefix("/") { home = "/" }
        return HostProbe(arch: field(u.machine), kernelRelease: field(u.release),
                         landlockABI: Landlock.probeABI(), uid: getuid(), gid: getgid(),
                         cwd: cwd, home: home, environment: env)
    }

    /// Why a run's namespaces cannot be made here, or nil when they can: `clone3` of a
    /// child that exits at once, with every namespace a run may get; refused, each
    /// namespace alone (and with a user namespace of its own) to name those refused.
    /// For `process.isolation = "namespaces-or-nested"` and the reason a namespaced
    /// run is refused; each try is a short-lived child, so not on every run's path.
    public static func namespaceBlocker() -> String? { namespaceRefusal()?.why }

    /// `namespaceBlocker`, with every errno the tries met: whether a policy that
    /// accepts either isolation may fall back to nested depends on them
    /// (`NamespaceRefusal.allowsNested`).
    public static func namespaceRefusal() -> NamespaceRefusal? {
        let user: UInt64 = 0x1000_0000
        let kinds: [(name: String, flag: UInt64)] = [
            ("user", user), ("mount", 0x0002_0000), ("PID", 0x2000_0000), ("IPC", 0x0800_0000),
            ("UTS", 0x0400_0000), ("cgroup", 0x0200_0000), ("network", 0x4000_0000),
        ]
        func attempt(_ flags: UInt64) -> Int32 {
            var status: Int32 = 0
            var step: UnsafePointer<CChar>? = nil
            let r = sbx_probe_clone3(flags, Int32(SBX_PROBE_EXIT.rawValue), &status, &step)
            return r < 0 ? -r : 0
        }
        func met(_ e: Int32) -> ProbeErrno { ProbeErrno(code: e, name: Errno(e).name) }
        let all = kinds.reduce(0) { $0 | $1.flag }
        let e = attempt(all)
        if e == 0 { return nil }
        if e == ENOSYS {
            return NamespaceRefusal(why: "clone3: ENOSYS (a seccomp filter refuses clone3, as Docker's default profile does, so that namespace flags can be filtered)",
                                    errnos: [met(e)])
        }
        var errnos = [met(e)]
        let refused = kinds.compactMap { k -> String? in
            let alone = attempt(k.flag)
            if alone == 0 || (k.flag != user && attempt(user | k.flag) == 0) { return nil }
            if !errnos.contains(met(alone)) { errnos.append(met(alone)) }
            return "\(k.name) (\(Errno(alone).name))"
        }
        var why = "clone3 refuses new " + (refused.isEmpty ? "namespaces all at once (\(Errno(e).name))" : refused.joinedText(separator: ", ") + " namespaces")
        if HostFeatures.effectiveCapabilities() & (1 << 21) == 0 { why += "; no CAP_SYS_ADMIN" }
        if let sysctl = userNamespaceBlocker() { why += "; \(sysctl)" }
        return NamespaceRefusal(why: why, errnos: errnos)
    }

    /// Why unprivileged user namespaces are unavailable, if a sysctl says so.
    public static func userNamespaceBlocker() -> String? {
        func read(_ path: String) -> String? {
            RunDirectory.read(path)?.trimmed
        }
        if read("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
            return "kernel.unprivileged_userns_clone = 0"
        }
        if read("/proc/sys/user/max_user_namespaces") == "0" { return "user.max_user_namespaces = 0" }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            return "kernel.apparmor_restrict_unprivileged_userns = 1"
        }
        return nil
    }
}

/// How one probe of `HostFeatures` came out.
public enum ProbeOutcome: Sendable, Equatable {
    case works
    /// The call that failed, and its errno.
    case fails(KernelError)
    /// Not tried, and why (root only, not applicable to this invoker).
    case notTried(String)

    public var works: Bool { self == .works }
}

/// The kernel audit state, as AUDIT_GET reports it (never changed: sandbox only asks).
public enum KernelAuditState: Sendable, Equatable {
    /// `enabled`: 0 off, 1 on, 2 on and locked; `daemonPID`: auditd's, 0 if none.
    case status(enabled: UInt32, daemonPID: UInt32, lost: UInt32)
    /// The kernel has no audit (`CONFIG_AUDIT` off).
    case notBuilt
    /// The state could not be read (AUDIT_GET needs CAP_AUDIT_CONTROL).
    case unreadable(KernelError)
}

/// Everything `sandbox doctor` asks the kernel, read-only: each probe reads a file,
/// asks a question (AUDIT_GET, landlock_create_ruleset's version) or makes a child or
/// socket of its own that is gone when it returns. Nothing here changes a host
/// setting (kernel audit in particular is never turned on: Docs/denials.md).
public struct HostFeatures: Sendable {
    public var rootless: Bool
    /// Landlock's ABI; 0 with `landlockErrno` (ENOSYS: not built in; EOPNOTSUPP:
    /// built in but not enabled at boot) when unavailable.
    public var landlockABI: Int
    public var landlockErrno: Errno?
    /// `/proc/sys/kernel/seccomp/actions_avail`; nil: no seccomp filters.
    public var seccompActions: [String]?
    /// `/proc/sys/kernel/seccomp/actions_logged`: actions the kernel logs when a
    /// filter asks for it.
    public var seccompLogged: [String]
    /// A child installs an allow-all filter with `SECCOMP_FILTER_FLAG_LOG`.
    public var seccompLogFlag: ProbeOutcome
    /// A child installs an allow-all filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`
    /// (user notification: `on_violation` notify, kill, log).
    public var seccompListener: ProbeOutcome
    /// `clone3(CLONE_PIDFD)`, `pidfd_send_signal`, `waitid(P_PIDFD)`.
    public var clone3Pidfd: ProbeOutcome
    /// `clone3` with every namespace a run gets, a user namespace included, as this
    /// invoker.
    public var namespaces: ProbeOutcome
    /// A sysctl that blocks unprivileged user namespaces, if one does.
    public var userNamespaceBlocker: String?
    /// When `namespaces` fails: which namespaces are refused and why
    /// (`HostProbe.namespaceBlocker`); nil when they can be made.
    public var namespaceBlocker: String? { namespaceRefusal?.why }
    /// The same, with the errnos met (whether `namespaces-or-nested` may fall back).
    public var namespaceRefusal: NamespaceRefusal? = nil
    public var cgroups: CgroupHost
    /// libnftables lists the ruleset (root only: egress needs a root invoker).
    public var nftables: ProbeOutcome
    /// `PIDFD_GET_NET_NAMESPACE` on our own pidfd: how egress reaches the child's
    /// network namespace.
    public var pidfdNetns: ProbeOutcome
    /// `openat2(RESOLVE_NO_SYMLINKS)`: bind sources, `--result`, `[audit] path`.
    public var openat2: ProbeOutcome
    public var audit: KernelAuditState
    /// CAP_AUDIT_READ / CAP_AUDIT_CONTROL in our effective set.
    public var capAuditRead: Bool
    public var capAuditControl: Bool
    /// A NETLINK_AUDIT socket bound to the read-only log group, as the denial
    /// reader's is.
    public var auditReadlog: ProbeOutcome
    /// We are in the initial network namespace (the only one the audit log group
    /// delivers to); nil when that cannot be told (`inInitialNetworkNamespace`).
    public var initialNetworkNamespace: Bool?
    /// The invoker's hard rlimits by resource number (`RLIM_INFINITY` = UInt64.max).
    public var hardLimits: [Int32: UInt64]
    /// Why the Landlock observer (BPF fentry on landlock_log_denial) cannot run
    /// here; nil: it runs (a value made without probing says it was not probed).
    public var landlockObserverRefusal: String? = "not probed"

    public static func probe() -> HostFeatures {
        let rootless = geteuid() != 0
        let abi = sbx_fence_landlock_abi()
        func words(_ path: String) -> [String]? {
            RunDirectory.read(path).map { $0.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init) }
        }
        func clone3(_ flags: UInt64, _ action: sbx_probe_action, _ what: String) -> ProbeOutcome {
            var status: Int32 = 0
            var step: UnsafePointer<CChar>? = nil
            let r = sbx_probe_clone3(flags, Int32(action.rawValue), &status, &step)
            if r < 0 { return .fails(KernelError(operation: step.map { String(cString: $0) } ?? "clone3", subject: what, errno: -r)) }
            if status != 0 { return .fails(KernelError(operation: "seccomp", subject: what, errno: status)) }
            return .works
        }
        // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: a run's set.
        let namespaceFlags: UInt64 = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000
            | 0x2000_0000 | 0x4000_0000
        var nft = ProbeOutcome.notTried("egress runs need a root invoker")
        if !rootless {
            do { _ = try Nftables.run("list tables", operation: "nft list tables", subject: "host"); nft = .works }
            catch { nft = .fails(error) }
        }
        var netns = ProbeOutcome.works
        let own = OwnedFD(sbx_cg_pidfd_open(getpid()))
        if own.raw < 0 {
            netns = .fails(KernelError(operation: "pidfd_open", subject: "self", errno: Errno.current))
        } else {
            let r = sbx_mounts_pidfd_netns(own.raw)
            if r < 0 { netns = .fails(KernelError(operation: "ioctl PIDFD_GET_NET_NAMESPACE", subject: "self", errno: -r)) }
            else { OwnedFD(r).close() }
            own.close()
        }
        var openat2 = ProbeOutcome.works
        let root = sbx_fence_open_no_symlinks("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        if root < 0 { openat2 = .fails(KernelError(operation: "openat2", subject: "/", errno: Errno.current)) }
        else { OwnedFD(root).close() }
        var status = sbx_audit_status()
        let a = sbx_probe_audit_status(&status)
        let audit: KernelAuditState = a == 0 ? .status(enabled: status.enabled, daemonPID: status.pid, lost: status.lost)
            : (a == -EPROTONOSUPPORT ? .notBuilt : .unreadable(KernelError(operation: "AUDIT_GET", subject: "NETLINK_AUDIT", errno: -a)))
        let readlog = sbx_probe_audit_readlog()
        let caps = effectiveCapabilities()
        var limits: [Int32: UInt64] = [:]
        for resource in Int32(0)..<16 {   // RLIMIT_NLIMITS
            var hard: UInt64 = 0
            if sbx_probe_hard_rlimit(resource, &hard) == 0 { limits[resource] = hard }
        }
        var features = HostFeatures(
            rootless: rootless, landlockABI: abi > 0 ? Int(abi) : 0, landlockErrno: abi > 0 ? nil : Errno(-abi),
            seccompActions: words("/proc/sys/kernel/seccomp/actions_avail"),
            seccompLogged: words("/proc/sys/kernel/seccomp/actions_logged") ?? [],
            seccompLogFlag: clone3(0, SBX_PROBE_SECCOMP_LOG, "SECCOMP_FILTER_FLAG_LOG"),
            seccompListener: clone3(0, SBX_PROBE_SECCOMP_NOTIF, "SECCOMP_FILTER_FLAG_NEW_LISTENER"),
            clone3Pidfd: clone3(0, SBX_PROBE_EXIT, "a child with a pidfd"),
            namespaces: clone3(namespaceFlags, SBX_PROBE_EXIT, "new user, mount, PID, IPC, UTS, cgroup and network namespaces"),
            userNamespaceBlocker: HostProbe.userNamespaceBlocker(), cgroups: CgroupHost.probe(),
            nftables: nft, pidfdNetns: netns, openat2: openat2, audit: audit,
            capAuditRead: caps & (1 << 37) != 0, capAuditControl: caps & (1 << 30) != 0,
            auditReadlog: readlog == 0 ? .works
                : .fails(KernelError(operation: "bind NETLINK_AUDIT", subject: "AUDIT_NLGRP_READLOG", errno: -readlog)),
            initialNetworkNamespace: inInitialNetworkNamespace(),
            hardLimits: limits,
            landlockObserverRefusal: rootless ? "it needs CAP_BPF and CAP_PERFMON (root)"
                : { if case .failure(let why) = LandlockObserver.shared(fresh: true) { return why.reason }; return nil }())
        if !features.namespaces.works { features.namespaceRefusal = HostProbe.namespaceRefusal() }
        return features
    }

    /// `CapEff` of /proc/self/status.
    static func effectiveCapabilities() -> UInt64 {
        for line in (RunDirectory.read("/proc/self/status") ?? "").split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(String(line.dropFirst(7)).trimmed, radix: 16) ?? 0
        }
        return 0
    }

    /// Whether our network namespace is the initial one: recent kernels give it a
    /// fixed inode (PROC_NET_INIT_INO, 0xEFFFFFF9) and every other one an inode of
    /// 0xF0000000 or more. nil where the initial one has no fixed inode (older
    /// kernels) — another process's /proc (PID 1's namespace) is not looked at.
    static func inInitialNetworkNamespace() -> Bool? {
        var st = stat()
        guard stat("/proc/self/ns/net", &st) == 0 else { return nil }
        return st.st_ino == 0xEFFF_FFF9 ? true : nil
    }
}
