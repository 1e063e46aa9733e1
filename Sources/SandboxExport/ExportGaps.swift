import SandboxPlan
import SandboxVocabulary

/// Where an exported plan runs: an OCI runtime (`export oci`) or a Kubernetes
/// cluster (`export k8s`).
public enum ExportTarget: String, Sendable, CaseIterable {
    case oci, k8s
}

/// One thing a plan asks for that a target cannot carry: the plan's key and what
/// happens there instead. `explain --target` prints these and the export writes
/// the same lines into its `sandbox/not-carried` annotation, so the two never differ.
public struct ExportGap: Sendable, Equatable {
    public var key: String
    public var instead: String
    public var line: String { "\(key): \(instead)" }
}

public enum ExportGaps {
    /// The annotation (OCI config and every Kubernetes object) holding ``of(_:target:)``,
    /// one gap a line.
    public static let annotation = "sandbox/not-carried"

    /// Everything in `plan` the target leaves out, in a fixed order.
    public static func of(_ plan: RunPlan, target: ExportTarget) -> [ExportGap] {
        var gaps: [ExportGap] = []
        func add(_ key: String, _ instead: String) { gaps.append(ExportGap(key: key, instead: instead)) }
        let kinds = Set(plan.mounts.map(\.kind))
        let landlockOn = plan.landlock.mode != .off && plan.landlock.abi > 0

        switch target {
        case .oci:
            if plan.process.timeoutMs != nil {
                add("process.timeout", "no runtime-spec field: whoever starts the container must end it")
            }
            if plan.process.hostUID == .own {
                add("process.host_uid", "the command runs as uid \(plan.process.uid) on the host, not a uid leased for the run (no user namespace: the writable binds would need idmapped mounts)")
            }
            for m in plan.mounts where m.kind == .pin && OCIExport.hostSource(of: m.destination, in: plan.mounts) == nil {
                add("filesystem (pin \(m.destination))", "not pinned: it lies in no host bind")
            }
        case .k8s:
            if landlockOn {
                add("landlock", "no Pod field; only an image whose entrypoint is the sandbox binary (as `export oci` builds) applies it")
            }
            if plan.mounts.contains(where: { $0.kind == .bind && $0.readOnly }) {
                add("filesystem.ro", "host paths are not mounted: the container reads its image's files (the root filesystem is read-only)")
            }
            if plan.mounts.contains(where: { $0.kind == .bind && !$0.readOnly }) {
                add("filesystem.rw", "each writable host path is an emptyDir volume at the same place: the host's files are not in it")
            }
            if kinds.contains(.protect) || kinds.contains(.pin) {
                add("filesystem.protect", "no read-only path inside a writable volume")
            }
            if kinds.contains(.mask) {
                add("filesystem.mask", "no hidden paths beyond the runtime's own under /proc")
            }
            if kinds.contains(.file) {
                add("in-memory files", "/etc/hosts and /etc/resolv.conf are the kubelet's, not the plan's text")
            }
            if !plan.process.rlimits.isEmpty {
                add("process.rlimits", "no Pod field: the container runtime's limits apply (\(plan.process.rlimits.map(\.name).joinedText(separator: ", ")))")
            }
            if plan.process.hostUID == .own {
                add("process.host_uid", "runAsUser is the uid on the node unless the cluster runs the Pod in a user namespace")
            }
            if plan.resources.pids != nil {
                add("resources.pids", "no Pod field: the node's podPidsLimit applies")
            }
            if plan.resources.swapBytes != nil {
                add("resources.swap", "no Pod field: the node's swap setting applies")
            }
            if plan.resources.ioWeight != nil {
                add("resources.io_weight", "no Pod field")
            }
            if plan.network.mode == .none {
                add("network.mode = none", "a Pod has an interface; the NetworkPolicy denies all egress and ingress, loopback stays up")
            }
            if plan.network.mode == .loopback {
                add("network.mode = loopback", "a Pod has an interface; the NetworkPolicy denies all egress and ingress")
            }
            if let stub = plan.network.stub {
                add("network.deny_resolved", "Cilium admits whatever a name resolves to; the stub refused answers in \(stub.denyResolved.count) ranges")
                if stub.names.contains(where: { $0.host.wildcard }) {
                    add("network.allow (wildcard hosts)", "Cilium's *.name matches one label below the name; the sandbox matches any number")
                }
                add("network server name check", "a flow to an admitted address is not checked for its TLS server name or HTTP Host")
            }
            if plan.network.mode == .egress && !plan.network.allow.isEmpty {
                add("network protected ranges", "a CIDR rule that covers loopback, link-local or a metadata address admits it (the NetworkPolicy has no refusal before the rules)")
            }
        }
        // Both targets.
        if plan.network.mode == .loopback && target == .oci {
            add("network.mode = loopback", "the runtime leaves lo down: no loopback traffic")
        }
        if plan.network.mode == .egress && target == .oci {
            add("network.mode = egress", "a new network namespace with no interface: nothing is reachable (the allow rules, the DNS stub and the server name check need the supervisor)")
        }
        if plan.seccomp.enabled && plan.seccomp.onViolation != .errno {
            add("seccomp.on_violation", "\(plan.seccomp.onViolation.rawValue) needs the supervisor: a denied call fails with EPERM and is not listed")
        }
        if plan.seccomp.enabled, plan.seccomp.socketFamilies != nil, !OCIExport.defaultDenies(plan.seccomp) {
            add("seccomp.socket_families", "the profile's default allows, so other families are not refused")
        }
        if plan.binary.isActive {
            add("binary", "the checks of the command's file (owner, mode, setuid, pinned digest) need the supervisor")
        }
        if plan.audit.path != nil {
            add("audit", "no audit log record")
        }
        if !plan.reportCreated.isEmpty {
            add("filesystem.protect (report)", "creation of \(plan.reportCreated.joinedText(separator: ", ")) is not reported")
        }
        add("result", "no run result or denial account: the runtime reports an exit status")
        return gaps
    }
}
