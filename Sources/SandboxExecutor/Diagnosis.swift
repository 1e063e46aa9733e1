import Glibc
import SandboxAudit
import SandboxKernel
import SandboxPlan
import SandboxVocabulary

/// `sandbox doctor`: every kernel feature the sandbox uses with its state on this
/// host for this invoker (from `HostFeatures`), what each missing one disables, and
/// for each policy whether it can run here. "Can it run" is the planner's answer (the
/// policy compiled against this host's facts; its refusals are the policy's) plus
/// what only the executor meets — the plan's needs against the probed features, the
/// cgroup limits through `RunCgroup.check`, the same checks `exec` makes — so doctor
/// holds no second copy of the rules.
///
/// The JSON form (`sandbox doctor --json`) is this type; its field names are stable.
public struct DoctorReport: Codable, Sendable, Equatable {
    public var format = "sandbox-doctor/1"
    public var kernel: String
    public var arch: String
    public var invokerUID: UInt32
    public var rootless: Bool
    /// Every feature, in a fixed order.
    public var features: [Feature]
    /// Every policy looked at (the shipped ones), by name.
    public var policies: [PolicyVerdict]
    /// The data directory's `Policies/`, whose files override the built-in ones of
    /// the same name; nil: no data directory, the built-in policies only.
    public var policyDirectory: String?
    /// Every policy can run here (and there was at least one): `doctor` exits 0.
    public var ok: Bool

    public init(kernel: String, arch: String, invokerUID: UInt32, rootless: Bool, features: [Feature],
                policies: [PolicyVerdict], policyDirectory: String?) {
        self.kernel = kernel; self.arch = arch; self.invokerUID = invokerUID; self.rootless = rootless
        self.features = features; self.policies = policies; self.policyDirectory = policyDirectory
        ok = !policies.isEmpty && policies.allSatisfy(\.runs)
    }

    public enum State: String, Codable, Sendable {
        case available, partial, unavailable, unknown
        /// Not used by this invoker's runs (idmapped mounts for a rootless one).
        case notApplicable = "not-applicable"
    }

    public struct Feature: Codable, Sendable, Equatable {
        /// A stable name: `landlock`, `seccomp`, `cgroups`, … (`Diagnosis.featureNames`).
        public var name: String
        public var state: State
        /// What was found, in words.
        public var detail: String
        /// Policy keys (and values) that cannot be used while this is missing: a
        /// policy with them is refused (125) unless marked best-effort.
        public var disables: [String]
        /// What runs still enforce but the result cannot report while this is missing.
        public var unreported: [String]
        /// More lines worth reading (the cgroup layout, the egress path's blockers).
        public var notes: [String]

        public init(name: String, state: State, detail: String, disables: [String] = [], unreported: [String] = [],
                    notes: [String] = []) {
            self.name = name; self.state = state; self.detail = detail; self.disables = disables
            self.unreported = unreported; self.notes = notes
        }
    }

    public struct PolicyVerdict: Codable, Sendable, Equatable {
        public var name: String
        /// The file it was loaded from.
        public var source: String
        public var runs: Bool
        /// Why it cannot run: the key at fault and the reason. Empty when it runs.
        public var blockers: [Blocker]
        /// What it would run without (best-effort protections this host lacks).
        public var without: [String]

        public init(name: String, source: String, blockers: [Blocker], without: [String]) {
            self.name = name; self.source = source; self.runs = blockers.isEmpty
            self.blockers = blockers; self.without = without
        }
    }

    public struct Blocker: Codable, Sendable, Equatable {
        /// The policy key (`resources.memory`, `network.mode`), or `host` when no
        /// key helps (the kernel lacks what every run needs).
        public var key: String
        public var reason: String
        public init(key: String, reason: String) { self.key = key; self.reason = reason }
    }
}

public enum Diagnosis {
    /// The features, in the order reported.
    public static let featureNames = [
        "clone3-pidfd", "openat2", "user-namespaces", "isolation", "landlock", "seccomp", "seccomp-user-notification",
        "seccomp-log", "cgroups", "nftables", "pidfd-netns", "idmapped-mounts", "kernel-audit", "audit-read",
        "landlock-audit", "audit-log",
    ]

    /// The cgroup limit names, as in `[resources] best_effort`.
    static let limitNames = ["memory", "swap", "pids", "cpu", "io"]

    // MARK: Features

    /// Each feature's state. `idmap` answers whether writable binds at a path can be
    /// idmapped (nil: yes); `idmapPaths` are the places looked at (root only).
    public static func features(_ f: HostFeatures, idmapPaths: [String] = [],
                                idmap: (String) -> String? = { _ in nil }, networkNotes: [String] = []) -> [DoctorReport.Feature] {
        typealias F = DoctorReport.Feature
        var out: [F] = []
        let everything = ["every policy: no run can start"]

        out.append(F(name: "clone3-pidfd", state: f.clone3Pidfd.works ? .available : .unavailable,
                     detail: describe(f.clone3Pidfd, works: "clone3 with CLONE_PIDFD, pidfd_send_signal, waitid(P_PIDFD)"),
                     disables: f.clone3Pidfd.works ? [] : everything))
        out.append(F(name: "openat2", state: f.openat2.works ? .available : .unavailable,
                     detail: describe(f.openat2, works: "openat2 with RESOLVE_NO_SYMLINKS (bind sources, --result, [audit] path)"),
                     disables: f.openat2.works ? [] : everything))

        // User namespaces: every rootless run has one; a root run has one when it
        // runs as a host uid of its own (process.host_uid = "own", the default).
        var userns = describe(f.namespaces, works: "a child with new user, mount, PID, IPC, UTS, cgroup and network namespaces")
        if let blocker = f.userNamespaceBlocker { userns += "; unprivileged user namespaces are blocked: \(blocker)" }
        out.append(F(name: "user-namespaces", state: f.namespaces.works ? .available : .unavailable, detail: userns,
                     disables: f.namespaces.works ? [] : (f.rootless ? ["every policy, for this (rootless) invoker"]
                                                                      : ["process.host_uid = \"own\" (the default): set \"invoker\""])))

        out.append(isolation(f))
        out.append(landlock(f))
        out.append(contentsOf: seccomp(f))
        out.append(cgroups(f))

        out.append(F(name: "nftables", state: f.nftables.works ? .available : (f.rootless ? .notApplicable : .unavailable),
                     detail: describe(f.nftables, works: "libnftables lists the host's tables (nf_tables in the kernel)"),
                     disables: f.nftables.works ? [] : ["network.mode = \"egress\""], notes: networkNotes))
        out.append(F(name: "pidfd-netns", state: f.pidfdNetns.works ? .available : .unavailable,
                     detail: describe(f.pidfdNetns, works: "PIDFD_GET_NET_NAMESPACE (egress reaches the run's network namespace)"),
                     disables: f.pidfdNetns.works ? [] : ["network.mode = \"egress\""]))

        if f.rootless {
            out.append(F(name: "idmapped-mounts", state: .notApplicable,
                         detail: "rootless runs keep the invoker's uid: nothing is idmapped"))
        } else {
            var bad: [String] = [], notes: [String] = []
            for path in idmapPaths {
                if let why = idmap(path) { bad.append(path); notes.append("\(path): no (\(why))") }
                else { notes.append("\(path): yes") }
            }
            out.append(F(name: "idmapped-mounts", state: bad.isEmpty ? .available : (bad.count == idmapPaths.count ? .unavailable : .partial),
                         detail: bad.isEmpty ? "writable binds can be idmapped for a run's own uid"
                             : "writable binds cannot be idmapped under \(bad.joinedText(separator: ", "))",
                         disables: bad.map { "process.host_uid = \"own\" (the default) with filesystem.rw under \($0): set \"invoker\"" },
                         notes: notes))
        }
        out.append(contentsOf: audit(f))
        return out
    }

    /// Which isolation runs get here (`process.isolation`, NestedPlan.swift): namespaces,
    /// or — where they cannot be made (an unprivileged container, user namespaces
    /// restricted) — nested only, and why.
    static func isolation(_ f: HostFeatures) -> DoctorReport.Feature {
        let fences = "Landlock\(f.landlockABI > 0 ? " ABI \(f.landlockABI)" : " (unavailable here, so nested runs are refused too)"), seccomp, dropped capabilities, no_new_privs, rlimits and a cgroup where one can be made"
        guard !f.namespaces.works else {
            return DoctorReport.Feature(name: "isolation", state: .available,
                detail: "namespaces: a run gets its own user, mount, PID, IPC, UTS, cgroup and network namespaces and a private root (process.isolation = \"nested\" runs without them, with \(fences))")
        }
        let why = f.namespaceBlocker ?? describe(f.namespaces, works: "")
        if let refusal = f.namespaceRefusal, !refusal.allowsNested {
            // ENOSPC and the like: a failure of the moment, which namespaces-or-nested
            // does not fall back on (NamespaceRefusal.allowsNested).
            return DoctorReport.Feature(name: "isolation", state: .unavailable,
                detail: "namespaces cannot be made right now (\(why)) with \(refusal.blockingErrnos.joinedText(separator: ", ")), which does not mean they are not permitted here: process.isolation = \"namespaces-or-nested\" refuses the run rather than fall back; \"nested\" runs with \(fences)",
                disables: ["process.isolation = \"namespaces\" and \"namespaces-or-nested\" until the cause is gone"])
        }
        return DoctorReport.Feature(name: "isolation", state: f.landlockABI > 0 ? .partial : .unavailable,
            detail: "nested only: namespaces cannot be made here (\(why)); a policy with process.isolation = \"nested\" or \"namespaces-or-nested\" runs with \(fences), and its plan and result list each layer applied or not",
            disables: ["process.isolation = \"namespaces\" (the default): set \"namespaces-or-nested\" or \"nested\""])
    }

    static func describe(_ o: ProbeOutcome, works: String) -> String {
        switch o {
        case .works: return works
        case .fails(let e): return "\(e)"
        case .notTried(let why): return "not checked: \(why)"
        }
    }

    static func landlock(_ f: HostFeatures) -> DoctorReport.Feature {
        let abi = min(f.landlockABI, LandlockAccess.knownABI)
        guard abi > 0 else {
            let why = f.landlockErrno == EOPNOTSUPP ? "built in but not enabled (add landlock to the lsm= boot parameter)"
                : "not in this kernel (CONFIG_SECURITY_LANDLOCK)"
            return .init(name: "landlock", state: .unavailable, detail: "Landlock: \(why)",
                         disables: ["landlock.mode = \"enforce\" (the default): use \"best-effort\" or \"off\""])
        }
        // What needs a newer ABI than the kernel's: keys, and rights the rules derive.
        var disables: [String] = []
        if abi < 4 { disables += ["landlock.connect_tcp (ABI 4)", "landlock.bind_tcp (ABI 4)"] }
        for s in LandlockScope.allCases where s.abi > abi { disables.append("landlock.scope \"\(s.rawValue)\" (ABI \(s.abi))") }
        for r in LandlockAccess.allCases where r.abi > abi { disables.append("the \(r.rawValue) right (ABI \(r.abi)) in every ruleset") }
        if abi < LandlockAccess.knownABI { disables.append("landlock.min_abi above \(abi)") }
        let beyond = f.landlockABI > LandlockAccess.knownABI ? " (kernel ABI \(f.landlockABI); this build uses up to \(abi))" : ""
        return .init(name: "landlock", state: disables.isEmpty ? .available : .partial,
                     detail: "Landlock ABI \(abi)\(beyond)" + (disables.isEmpty ? "" : "; under landlock.mode = \"enforce\" a policy using these is refused, under \"best-effort\" it runs without them"),
                     disables: disables)
    }

    static func seccomp(_ f: HostFeatures) -> [DoctorReport.Feature] {
        typealias F = DoctorReport.Feature
        guard let actions = f.seccompActions else {
            return [F(name: "seccomp", state: .unavailable, detail: "no seccomp filters (/proc/sys/kernel/seccomp/actions_avail is missing)",
                      disables: ["seccomp.profile", "seccomp.deny", "seccomp.socket_families"]),
                    F(name: "seccomp-user-notification", state: .unavailable, detail: "no seccomp filters",
                      disables: ["seccomp.on_violation = \"notify\", \"kill\", \"log\""], unreported: ["violations"]),
                    F(name: "seccomp-log", state: .unavailable, detail: "no seccomp filters",
                      unreported: ["denials of kind syscall in errno mode"])]
        }
        var out: [F] = []
        let missingErrno = !actions.contains("errno")
        out.append(F(name: "seccomp", state: missingErrno ? .partial : .available, detail: "actions: \(actions.joinedText(separator: " "))",
                     disables: missingErrno ? ["seccomp.on_violation = \"errno\" (the default)"] : []))
        let notify = actions.contains("user_notif") && f.seccompListener.works
        out.append(F(name: "seccomp-user-notification", state: notify ? .available : .unavailable,
                     detail: !actions.contains("user_notif") ? "user_notif is not in actions_avail"
                         : describe(f.seccompListener, works: "a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER loads"),
                     disables: notify ? [] : ["seccomp.on_violation = \"notify\", \"kill\", \"log\""],
                     unreported: notify ? [] : ["violations"]))
        // A denial in errno mode is observable only through the kernel's log of it:
        // the filter asks (FLAG_LOG), actions_logged holds errno, and the reader can
        // read the audit log group.
        var why: [String] = []
        if !f.seccompLogFlag.works { why.append(describe(f.seccompLogFlag, works: "")) }
        if !f.seccompLogged.contains("errno") { why.append("errno is not in /proc/sys/kernel/seccomp/actions_logged (\(f.seccompLogged.joinedText(separator: " ")))") }
        if !auditReadable(f) { why.append("the audit log group cannot be read (see audit-read)") }
        out.append(F(name: "seccomp-log", state: why.isEmpty ? .available : .unavailable,
                     detail: why.isEmpty ? "SECCOMP_FILTER_FLAG_LOG loads, errno denials are logged (actions_logged: \(f.seccompLogged.joinedText(separator: " "))) and readable"
                         : why.joinedText(separator: "; "),
                     unreported: why.isEmpty ? [] : ["denials of kind syscall in errno mode (the calls still fail)"]))
        return out
    }

    static func cgroups(_ f: HostFeatures) -> DoctorReport.Feature {
        let host = f.cgroups
        var disables: [String] = []
        for name in limitNames {
            // Each limit alone, through the check `exec` makes.
            let refused = RunCgroup.check(limits: limits([name]), bestEffort: [], host: host).refused
            if let r = refused.first(where: { $0.limit == name }) ?? refused.first {
                disables.append("resources.\(name) (\(reason(r)))")
            }
        }
        let mode: String
        switch host.mode {
        case .unified(let mp): mode = "cgroup v2 at \(mp)"
        case .hybrid(_, nil): mode = "cgroup v1"
        case .hybrid(_, let unified?): mode = "hybrid: cgroup v1 controllers, cgroup2 at \(unified) unused for limits"
        case .unavailable: mode = "no usable cgroup hierarchy"
        }
        let usable = host.canCreate ? host.controllers.joinedText(separator: " ") : "none (this user cannot create run cgroups)"
        return .init(name: "cgroups", state: disables.isEmpty ? .available : (disables.count == limitNames.count ? .unavailable : .partial),
                     detail: "\(mode); controllers usable for this user: \(usable.isEmpty ? "none" : usable)",
                     disables: disables.map { $0 + " unless best-effort" }, notes: host.summary)
    }

    /// Why a limit cannot be applied, without the advice to mark it best-effort
    /// (said once, after it).
    static func reason(_ r: CgroupRefusal) -> String {
        let text = r.error.detail ?? "\(r.error)"
        guard let advice = text.firstRange(of: "; mark it best-effort") else { return text }
        return String(text[..<advice.lowerBound])
    }

    /// A limit set asking for exactly these names (values do not matter to the check).
    static func limits(_ names: [String]) -> CgroupLimits {
        var l = CgroupLimits()
        for n in names {
            switch n {
            case "memory": l.memoryBytes = 1 << 30
            case "swap": l.memoryBytes = 1 << 30; l.swapBytes = 0   // v1 limits swap only with memory
            case "pids": l.pids = 64
            case "cpu": l.cpuQuotaUs = 100_000; l.cpuPeriodUs = 100_000
            case "io": l.ioWeight = 100
            default: break
            }
        }
        return l
    }

    static func auditReadable(_ f: HostFeatures) -> Bool {
        f.capAuditRead && f.auditReadlog.works && f.initialNetworkNamespace != false
    }

    static func audit(_ f: HostFeatures) -> [DoctorReport.Feature] {
        typealias F = DoctorReport.Feature
        let landlockKinds = ["denials of kind filesystem, signal and abstract-socket (Landlock still denies them)"]
        var out: [F] = []
        let enabled: UInt32?
        switch f.audit {
        case .status(let e, let pid, let lost):
            enabled = e
            let words = e == 0 ? "off" : (e == 2 ? "on and locked" : "on")
            out.append(F(name: "kernel-audit", state: e == 0 ? .unavailable : .available,
                         detail: "kernel audit is \(words) (auditd pid \(pid == 0 ? "none" : String(pid)), \(lost) records lost)"
                             + (e == 0 ? "; sandbox never turns it on: `auditctl -e 1` or booting with audit=1 is a host-wide choice (sticky until reboot)" : ""),
                         unreported: e == 0 ? landlockKinds : []))
        case .notBuilt:
            enabled = 0
            out.append(F(name: "kernel-audit", state: .unavailable, detail: "the kernel has no audit (CONFIG_AUDIT)",
                         unreported: landlockKinds + ["denials of kind syscall in errno mode"]))
        case .unreadable(let e):
            enabled = nil
            out.append(F(name: "kernel-audit", state: .unknown,
                         detail: "\(e)" + (f.capAuditControl ? "" : " (AUDIT_GET needs CAP_AUDIT_CONTROL)")))
        }
        var why: [String] = []
        if !f.capAuditRead { why.append("no CAP_AUDIT_READ") }
        if !f.auditReadlog.works { why.append(describe(f.auditReadlog, works: "")) }
        if f.initialNetworkNamespace == false { why.append("not in the initial network namespace (the audit log group reaches only that one)") }
        let unsure = f.initialNetworkNamespace == nil ? " (whether this is the initial network namespace, the only one it delivers to, cannot be told on this kernel)" : ""
        out.append(F(name: "audit-read", state: why.isEmpty ? .available : .unavailable,
                     detail: why.isEmpty ? "CAP_AUDIT_READ; the audit log group (AUDIT_NLGRP_READLOG) can be joined\(unsure)" : why.joinedText(separator: "; "),
                     unreported: why.isEmpty ? [] : landlockKinds + ["denials of kind syscall in errno mode"]))
        // Landlock's denials: the observer (BPF fentry on landlock_log_denial) where
        // the kernel allows it; else Landlock's audit records (ABI 7), only while
        // kernel audit is on.
        var llWhy: [String] = []
        if f.landlockABI < 7 { llWhy.append("Landlock ABI \(f.landlockABI) has no denial logging (ABI 7)") }
        if enabled == 0 { llWhy.append("kernel audit is off") }
        if !auditReadable(f) { llWhy.append("the audit log group cannot be read (see audit-read)") }
        if f.landlockObserverRefusal == nil {
            out.append(F(name: "landlock-audit", state: .available,
                         detail: "Landlock denials observed by the BPF observer (fentry on landlock_log_denial)"
                             + (llWhy.isEmpty ? "; also logged by the kernel audit" : "; kernel audit not needed (\(llWhy.joinedText(separator: "; ")))")))
        } else {
            let llState: DoctorReport.State = !llWhy.isEmpty ? .unavailable : (enabled == nil ? .unknown : .available)
            if !llWhy.isEmpty, let refusal = f.landlockObserverRefusal { llWhy.append(refusal) }
            out.append(F(name: "landlock-audit", state: llState,
                         detail: llWhy.isEmpty ? (enabled == nil ? "Landlock ABI \(f.landlockABI) logs denials; whether audit is on could not be read"
                                                                  : "Landlock denials are logged and readable")
                             : llWhy.joinedText(separator: "; "),
                         unreported: llWhy.isEmpty ? [] : landlockKinds))
        }
        out.append(F(name: "audit-log", state: f.openat2.works ? .available : .unavailable,
                     detail: f.openat2.works ? "[audit] logs: openat2 without symlinks, O_APPEND, flock, SHA-256/HMAC-SHA256"
                         : describe(f.openat2, works: ""),
                     disables: f.openat2.works ? [] : ["audit.path"]))
        return out
    }

    // MARK: Policies

    /// Why a compiled plan cannot run on this host (empty: it can), and what it would
    /// run without. `idmap` answers whether a writable bind's source can be idmapped
    /// (nil: yes).
    public static func verdict(_ plan: RunPlan, on f: HostFeatures, idmap: (String) -> String? = { _ in nil })
        -> (blockers: [DoctorReport.Blocker], without: [String]) {
        typealias B = DoctorReport.Blocker
        var blockers: [B] = []
        var without = plan.notApplied
        if case .fails(let e) = f.clone3Pidfd { blockers.append(B(key: "host", reason: "\(e)")) }
        if case .fails(let e) = f.openat2 { blockers.append(B(key: "host", reason: "\(e)")) }
        if case .fails(let e) = f.namespaces {
            let blocker = f.userNamespaceBlocker.map { " (\($0))" } ?? ""
            if plan.process.userNamespace != nil {
                blockers.append(B(key: "host", reason: "a rootless run needs a user namespace: \(e)\(blocker)"))
            } else if plan.process.hostUID == .own {
                blockers.append(B(key: "process.host_uid", reason: "a run as its own host uid needs a user namespace: \(e)\(blocker); set process.host_uid = \"invoker\""))
            }
        }
        if !plan.isNested, let why = f.namespaceBlocker {
            blockers.append(B(key: "process.isolation", reason: "namespaces cannot be made here (\(why)) and the policy does not accept nested isolation; set process.isolation = \"namespaces-or-nested\" or \"nested\""))
        }
        if plan.seccomp.enabled {
            if f.seccompActions == nil {
                blockers.append(B(key: "seccomp", reason: "this kernel has no seccomp filters"))
            } else if plan.seccomp.onViolation != .errno,
                      !(f.seccompActions?.contains("user_notif") ?? false) || !f.seccompListener.works {
                blockers.append(B(key: "seccomp.on_violation", reason: "\"\(plan.seccomp.onViolation.rawValue)\" needs seccomp user notification: \(describe(f.seccompListener, works: "user_notif is not in actions_avail"))"))
            }
        }
        if plan.network.mode == .egress {
            if case .fails(let e) = f.nftables { blockers.append(B(key: "network.mode", reason: "\"egress\" needs nftables: \(e)")) }
            if case .fails(let e) = f.pidfdNetns { blockers.append(B(key: "network.mode", reason: "\"egress\" needs PIDFD_GET_NET_NAMESPACE: \(e)")) }
        }
        let cgroup = RunCgroup.check(limits: plan.resources.cgroupLimits, bestEffort: Set(plan.resources.bestEffort), host: f.cgroups)
        for r in cgroup.refused {
            blockers.append(B(key: r.limit.map { "resources.\($0)" } ?? "resources",
                              reason: reason(r) + "; mark it best-effort in [resources] to run without it"))
        }
        without += cgroup.notApplied.map { "resources: \($0) (best-effort, cannot be applied here)" }
        // Raising a hard limit needs privilege on the host.
        if f.rootless {
            for r in plan.process.rlimits {
                if let hard = f.hardLimits[r.resource], r.hard > hard {
                    let want = r.hard == UInt64.max ? "unlimited" : String(r.hard)
                    let have = hard == UInt64.max ? "unlimited" : String(hard)
                    blockers.append(B(key: "resources.rlimits.\(r.name)", reason: "\(want) is above this invoker's hard limit \(have); only a privileged invoker may raise it"))
                }
            }
        }
        if plan.process.userNamespace == nil && plan.process.hostUID == .own {
            for m in plan.mounts where m.kind == .bind && !m.readOnly {
                guard let source = m.source, let why = idmap(source) else { continue }
                blockers.append(B(key: "process.host_uid", reason: "\(m.origin) \(source) cannot be idmapped for the run's own uid (\(why)); set process.host_uid = \"invoker\""))
            }
        }
        if plan.audit.path != nil, case .fails(let e) = f.openat2 {
            blockers.append(B(key: "audit.path", reason: "\(e)"))
        }
        if let key = plan.audit.keyFile {
            do { _ = try AuditKey.load(path: key, invoker: plan.host.invokerUID) }
            catch { blockers.append(B(key: "audit.key_file", reason: "\(error)")) }
        }
        return (blockers, without)
    }
}
