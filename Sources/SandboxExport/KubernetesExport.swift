import FoundationEssentials
import SandboxPlan
import SandboxVocabulary

/// A compiled plan as Kubernetes objects (Docs/scale-out.md): a Pod, a NetworkPolicy,
/// a CiliumNetworkPolicy when allow rules name hosts, and the seccomp profile the Pod
/// names (`Localhost`), to be installed under the kubelet's seccomp directory.
/// What a cluster cannot carry is ``ExportGaps`` for `.k8s`, in each object's
/// `sandbox/not-carried` annotation.
public struct K8sExport: Sendable, Equatable {
    public var pod: K8s.Pod
    public var networkPolicy: K8s.NetworkPolicy
    public var ciliumPolicy: K8s.CiliumNetworkPolicy?
    public var seccompProfile: OCISpec.Seccomp?
    /// The Pod's `localhostProfile`: the profile's path under the kubelet's seccomp
    /// directory (and under `seccomp/` in the export's directory).
    public var seccompProfileName: String?

    /// The label every object selects the Pod by.
    public static let selectorLabel = "sandbox/run"

    public static func objects(_ plan: RunPlan, name: String, image: String) -> K8sExport {
        let gaps = ExportGaps.of(plan, target: .k8s).map(\.line).joinedText(separator: "\n")
        let annotations = [ExportGaps.annotation: gaps, "sandbox/policy": plan.policy.name]
        let selector = K8s.LabelSelector(matchLabels: [selectorLabel: name])
        func meta(_ suffix: String) -> K8s.ObjectMeta {
            .init(name: name + suffix, labels: [selectorLabel: name], annotations: annotations)
        }

        let profile = OCIExport.seccomp(plan.seccomp)
        let profileName = profile == nil ? nil : "sandbox-\(name).json"
        let seccompRef = profileName.map { K8s.SeccompProfile(type: "Localhost", localhostProfile: $0) }
            ?? K8s.SeccompProfile(type: "Unconfined", localhostProfile: nil)

        // Every place the command may write (writable binds, tmpfs) is a volume of its
        // own; the root filesystem is read-only.
        var volumes: [K8s.Volume] = []
        var mounts: [K8s.VolumeMount] = []
        for step in plan.mounts {
            let writableBind = step.kind == .bind && !step.readOnly
            guard writableBind || step.kind == .tmpfs else { continue }
            let volume = "v\(volumes.count)-" + dnsLabel(step.destination, limit: 40)
            volumes.append(.init(name: volume, emptyDir: .init(medium: step.kind == .tmpfs ? "Memory" : nil, sizeLimit: nil)))
            mounts.append(.init(name: volume, mountPath: step.destination, readOnly: step.readOnly ? true : nil))
        }

        let uid = Int64(plan.process.uid), gid = Int64(plan.process.gid)
        let nonRoot: Bool? = uid != 0 ? true : nil
        let env = plan.process.env.map { line -> K8s.EnvVar in
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return .init(name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
        let keep = plan.capabilities.keep.map { $0.uppercased().replacing("CAP_", with: "") }
        let container = K8s.Container(
            name: "command", image: image, command: plan.process.argv, workingDir: plan.process.workdir, env: env,
            resources: resources(plan.resources),
            securityContext: .init(runAsUser: uid, runAsGroup: gid, runAsNonRoot: nonRoot,
                                   capabilities: .init(drop: ["ALL"], add: keep.isEmpty ? nil : keep),
                                   seccompProfile: seccompRef),
            volumeMounts: mounts.isEmpty ? nil : mounts)
        let deadline = plan.process.timeoutMs.map { Int64(($0 + 999) / 1000) }
        let pod = K8s.Pod(metadata: meta(""), spec: .init(
            hostname: isDNSLabel(plan.process.hostname) ? plan.process.hostname : nil,
            activeDeadlineSeconds: deadline,
            securityContext: .init(runAsUser: uid, runAsGroup: gid, runAsNonRoot: nonRoot, supplementalGroups: nil,
                                   seccompProfile: seccompRef),
            containers: [container], volumes: volumes.isEmpty ? nil : volumes))

        var egress: [K8s.EgressRule] = []
        var cilium: K8s.CiliumNetworkPolicy?
        if plan.network.mode == .egress {
            for rule in plan.network.allow {
                egress.append(.init(to: [.init(ipBlock: .init(cidr: rule.cidr))],
                                    ports: rule.ports.isEmpty ? nil : rule.ports.map { .init(protocol: rule.proto.uppercased(), port: Int($0)) }))
            }
            // Names are resolved by the cluster's resolver, and by nothing else.
            egress.append(.init(to: [.init(namespaceSelector: .init(matchLabels: ["kubernetes.io/metadata.name": "kube-system"]),
                                           podSelector: .init(matchLabels: ["k8s-app": "kube-dns"]))],
                                ports: [.init(protocol: "UDP", port: 53), .init(protocol: "TCP", port: 53)]))
            if let stub = plan.network.stub, !stub.names.isEmpty {
                let selectors = stub.names.map { fqdn($0.host) }
                var rules: [K8s.CiliumEgressRule] = [
                    // Cilium's DNS proxy answers only these names: the stub's refusal of the rest.
                    .init(toEndpoints: [.init(matchLabels: ["k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"])],
                          toFQDNs: nil,
                          toPorts: [.init(ports: [.init(port: "53", protocol: "ANY")], rules: .init(dns: uniq(selectors)))]),
                ]
                for name in stub.names {
                    rules.append(.init(toEndpoints: nil, toFQDNs: [fqdn(name.host)],
                                       toPorts: [.init(ports: name.ports.map { .init(port: String($0), protocol: name.proto.uppercased()) }, rules: nil)]))
                }
                cilium = .init(metadata: meta("-fqdn"), spec: .init(endpointSelector: selector, egress: rules))
            }
        }
        let policy = K8s.NetworkPolicy(metadata: meta("-egress"), spec: .init(podSelector: selector, egress: egress))
        return K8sExport(pod: pod, networkPolicy: policy, ciliumPolicy: cilium, seccompProfile: profile,
                         seccompProfileName: profileName)
    }

    /// The files `write(to:)` makes, relative to its directory, in order.
    public func files() throws -> [(path: String, data: Data)] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var out: [(String, Data)] = [("pod.json", try encoder.encode(pod)), ("network-policy.json", try encoder.encode(networkPolicy))]
        if let ciliumPolicy { out.append(("cilium-network-policy.json", try encoder.encode(ciliumPolicy))) }
        if let seccompProfile, let seccompProfileName {
            out.append(("seccomp/" + seccompProfileName, try encoder.encode(seccompProfile)))
        }
        return out.map { ($0.0, $0.1 + Data("\n".utf8)) }
    }

    /// Writes the objects (one JSON file each: `kubectl apply -f DIR`) and the profile
    /// under `DIR/seccomp/`.
    public func write(to directory: String) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory + "/seccomp", withIntermediateDirectories: true)
        var written: [String] = []
        for (path, data) in try files() {
            let full = directory + "/" + path
            try data.write(to: URL(fileURLWithPath: full))
            written.append(full)
        }
        return written
    }

    static func fqdn(_ host: HostPattern) -> K8s.FQDNSelector {
        host.wildcard ? .init(matchName: nil, matchPattern: "*." + host.base) : .init(matchName: host.base, matchPattern: nil)
    }

    static func uniq(_ selectors: [K8s.FQDNSelector]) -> [K8s.FQDNSelector] {
        var seen: [K8s.FQDNSelector] = []
        for s in selectors where !seen.contains(s) { seen.append(s) }
        return seen
    }

    static func resources(_ r: ResourcePlan) -> K8s.Resources? {
        var limits: [String: String] = [:]
        if let m = r.memoryBytes { limits["memory"] = String(m) }
        if let q = r.cpuQuotaUs, let p = r.cpuPeriodUs, p > 0 { limits["cpu"] = "\(max(1, q * 1000 / p))m" }
        return limits.isEmpty ? nil : .init(limits: limits, requests: limits)
    }

    static func isDNSLabel(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 63 && s.first != "-" && s.last != "-"
            && s.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
    }

    /// `text` as a DNS label (lower case letters, digits, `-`), at most `limit` long.
    public static func dnsLabel(_ text: String, limit: Int = 63) -> String {
        var out = ""
        for c in text.lowercased().unicodeScalars {
            let ok = (c >= "a" && c <= "z") || (c >= "0" && c <= "9")
            if ok { out.unicodeScalars.append(c) } else if !out.isEmpty && !out.hasSuffix("-") { out += "-" }
        }
        while out.hasSuffix("-") { out.removeLast() }
        if out.isEmpty { out = "root" }
        var label = out.prefix(limit)   // starts with a letter or digit
        while label.hasSuffix("-") { label.removeLast() }
        return String(label)
    }
}
