import Glibc
import SandboxExecutor
@testable import SandboxKernel
import SandboxVocabulary
import Testing

/// `sandbox doctor`'s features on hosts this machine is not: each missing feature is
/// reported as missing, with the policy keys it disables or what the result can no
/// longer report — never silently "available".
@Suite struct DiagnosisTests {
    static func host(missing: Bool, rootless: Bool = false) -> HostFeatures {
        let fail = ProbeOutcome.fails(KernelError(operation: "probe", subject: "", errno: ENOSYS))
        return HostFeatures(
            rootless: rootless, landlockABI: missing ? 0 : 7, landlockErrno: missing ? Errno(ENOSYS) : nil,
            seccompActions: missing ? nil : ["kill_process", "errno", "user_notif", "log", "allow"],
            seccompLogged: missing ? [] : ["errno"], seccompLogFlag: missing ? fail : .works,
            seccompListener: missing ? fail : .works, clone3Pidfd: missing ? fail : .works,
            namespaces: missing ? fail : .works, userNamespaceBlocker: missing ? "user.max_user_namespaces = 0" : nil,
            cgroups: CgroupHost(mode: missing ? .unavailable : .unified(mountPoint: "/nonexistent-cgroup"), euid: 0),
            nftables: missing ? fail : .works, pidfdNetns: missing ? fail : .works, openat2: missing ? fail : .works,
            audit: missing ? .notBuilt : .status(enabled: 1, daemonPID: 0, lost: 0),
            capAuditRead: !missing, capAuditControl: !missing, auditReadlog: missing ? fail : .works,
            initialNetworkNamespace: !missing, hardLimits: [:])
    }

    /// Red-team F6: where the namespace probe met ENOSPC (the per-user count
    /// exhausted, which another process of the user can cause), doctor does not say
    /// "nested only": namespaces-or-nested refuses the run there. EPERM: nested only.
    @Test func isolationTellsAFailureOfTheMomentFromARestriction() {
        var f = Self.host(missing: false)
        f.namespaces = .fails(KernelError(operation: "clone3", subject: "", errno: EPERM))
        func isolation() -> DoctorReport.Feature? {
            Diagnosis.features(f, idmapPaths: [], idmap: { _ in nil }).first { $0.name == "isolation" }
        }
        f.namespaceRefusal = NamespaceRefusal(why: "clone3 refuses new user (EPERM) namespaces", errnos: [ProbeErrno(code: EPERM, name: "EPERM")])
        #expect(isolation()?.state == .partial && isolation()?.detail.hasPrefix("nested only") == true, "\(isolation().map { "\($0)" } ?? "none")")
        f.namespaceRefusal = NamespaceRefusal(why: "clone3 refuses new user (ENOSPC) namespaces", errnos: [ProbeErrno(code: ENOSPC, name: "ENOSPC")])
        let spc = isolation()
        #expect(spc?.state == .unavailable && spc?.detail.contains("with ENOSPC") == true && spc?.detail.contains("refuses the run") == true,
                "\(spc.map { "\($0)" } ?? "none")")
    }

    @Test func everyMissingFeatureSaysWhatItDisables() {
        let features = Diagnosis.features(Self.host(missing: true), idmapPaths: ["/a"], idmap: { _ in "EINVAL" })
        #expect(features.map(\.name) == Diagnosis.featureNames)
        for f in features {
            #expect(f.state == .unavailable, "\(f.name): \(f.state)")
            #expect(!f.disables.isEmpty || !f.unreported.isEmpty, "\(f.name) says nothing about what it costs")
        }
        func disables(_ name: String) -> [String] { features.first { $0.name == name }?.disables ?? [] }
        #expect(disables("landlock").contains { $0.hasPrefix("landlock.mode = \"enforce\"") })
        #expect(disables("seccomp") == ["seccomp.profile", "seccomp.deny", "seccomp.socket_families"])
        #expect(disables("seccomp-user-notification").contains { $0.contains("on_violation") })
        #expect(disables("cgroups").map { String($0.prefix { $0 != " " }) }
            == ["resources.memory", "resources.swap", "resources.pids", "resources.cpu", "resources.io"])
        #expect(disables("nftables") == ["network.mode = \"egress\""])
        #expect(disables("pidfd-netns") == ["network.mode = \"egress\""])
        #expect(disables("idmapped-mounts").first?.contains("process.host_uid") == true)
        #expect(disables("user-namespaces").first?.contains("process.host_uid") == true)
        #expect(disables("audit-log") == ["audit.path"])
    }

    /// The same host with everything present: nothing is disabled (control), except
    /// what a faked cgroup tree without controllers cannot give.
    @Test func presentFeaturesDisableNothing() {
        let features = Diagnosis.features(Self.host(missing: false), idmapPaths: ["/a"], idmap: { _ in nil })
        for f in features where f.name != "cgroups" {
            #expect(f.state == .available, "\(f.name): \(f.state) \(f.detail)")
            #expect(f.disables.isEmpty && f.unreported.isEmpty, "\(f.name): \(f.disables) \(f.unreported)")
        }
    }
}
