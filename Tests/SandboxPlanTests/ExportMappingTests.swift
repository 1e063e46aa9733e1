import Foundation
import SandboxExport
import SandboxPlan
import SandboxPolicy
import Testing

/// `sandbox export` from a plan, pure (no root, no runtime, no cluster): the OCI
/// config and the Kubernetes objects carry what the plan says, field by field, and
/// what they cannot carry is in the `sandbox/not-carried` annotation. ExportTests
/// runs the bundles under runc; these fail first when a mapping breaks.
@Suite struct ExportMappingTests {
    static let toml = """
        name = "export-map"
        [process]
        timeout = "90s"
        [filesystem]
        ro = ["/usr"]
        rw = ["{cwd}"]
        tmpfs = ["/tmp"]
        protect = [".git"]
        mask = ["/usr/share/secret"]
        [capabilities]
        keep = ["CAP_NET_BIND_SERVICE"]
        [seccomp]
        profile = "default"
        deny = ["ptrace"]
        socket_families = ["unix", "inet"]
        [resources]
        memory = "256M"
        pids = 100
        cpu = 1.5
        [network]
        mode = "egress"
        allow = [{ cidr = "10.0.0.0/8", ports = [443] }, { host = "*.example.com", ports = [443] }]
        """

    func plan() throws -> RunPlan {
        var h = host(uid: 0, files: ["/usr/share/secret": .directory])
        h.hostResolvers = ["192.0.2.53"]
        return try PlanCompiler(host: h).compile(try policy(Self.toml), argv: ["make", "test"], runId: "r1")
    }

    @Test func ociConfigCarriesThePlan() throws {
        let plan = try plan()
        let spec = try OCIExport.bundle(plan, entrypoint: .init(binary: "/opt/sandbox", libraryDirectories: [])).spec

        // Every namespace of a run but the user namespace (the runtime's choice).
        #expect(spec.linux.namespaces.map(\.type) == ["cgroup", "ipc", "mount", "network", "pid", "uts"])
        // Binds keep their mode; tmpfs and /proc are the runtime's own.
        let byDest = Dictionary(spec.mounts.map { ($0.destination, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byDest["/usr"]?.type == "bind" && byDest["/usr"]?.options.contains("ro") == true, "\(byDest["/usr"].map { "\($0)" } ?? "none")")
        #expect(byDest["/work/proj"]?.source == "/work/proj" && byDest["/work/proj"]?.options.contains("rw") == true)
        #expect(byDest["/tmp"]?.type == "tmpfs")
        #expect(byDest["/proc"]?.type == "proc")
        // protect → read-only, mask → masked; the child's procfs hardening too.
        #expect(spec.linux.readonlyPaths.contains("/work/proj/.git") && spec.linux.readonlyPaths.contains("/proc/sys"), "\(spec.linux.readonlyPaths)")
        #expect(spec.linux.maskedPaths.contains("/usr/share/secret") && spec.linux.maskedPaths.contains("/proc/kcore"), "\(spec.linux.maskedPaths)")
        #expect(spec.root.readonly)
        // Capabilities: every set only what is kept; no_new_privs.
        let caps = spec.process.capabilities
        for set in [caps.bounding, caps.effective, caps.inheritable, caps.permitted, caps.ambient] {
            #expect(set == ["CAP_NET_BIND_SERVICE"], "\(caps)")
        }
        #expect(spec.process.noNewPrivileges && spec.process.user.uid == plan.process.uid)
        // Landlock has no runtime-spec field: the entrypoint applies it.
        #expect(Array(spec.process.args.prefix(2)) == [OCIExport.entrypointBinary, OCIExport.entrypointCommand])
        #expect(Array(spec.process.args.suffix(2)) == ["make", "test"])

        // Seccomp: the plan's rules in the same order, ptrace refused with EPERM, and the
        // socket families as allow rules on socket(2)'s first argument (the default
        // profile denies what no rule allows, so no unconditional socket allow stays).
        let seccomp = try #require(spec.linux.seccomp)
        #expect(seccomp.architectures == ["SCMP_ARCH_X86_64"])
        #expect(seccomp.defaultAction == "SCMP_ACT_ERRNO")
        #expect(seccomp.syscalls.contains { $0.names.contains("ptrace") && $0.action == "SCMP_ACT_ERRNO" && $0.errnoRet == 1 })
        let sockets = seccomp.syscalls.filter { $0.names.contains("socket") }
        #expect(sockets.allSatisfy { $0.action == "SCMP_ACT_ALLOW" && $0.args?.count == 1 && $0.args?[0].index == 0 }, "\(sockets)")
        #expect(Set(sockets.compactMap { $0.args?.first?.value }) == [1, 2], "AF_UNIX and AF_INET only: \(sockets)")

        // Resources: 256 MiB, no swap beyond it, 100 pids, 1.5 cores.
        let r = try #require(spec.linux.resources)
        #expect(r.memory?.limit == 256 << 20 && r.memory?.swap == 256 << 20)
        #expect(r.pids?.limit == 100)
        let cpu = try #require(r.cpu)
        #expect(Double(cpu.quota ?? 0) / Double(cpu.period ?? 1) == 1.5, "\(cpu)")

        // What the config cannot say, in its annotation.
        let gaps = spec.annotations[ExportGaps.annotation] ?? ""
        #expect(gaps.contains("process.timeout"), "\(gaps)")
        #expect(gaps.split(separator: "\n").map(String.init) == ExportGaps.of(plan, target: .oci).map(\.line))
    }

    @Test func kubernetesObjectsCarryThePlan() throws {
        let plan = try plan()
        let k = K8sExport.objects(plan, name: "job", image: "registry.example/img@sha256:0")
        let pod = k.pod
        let c = try #require(pod.spec.containers.first)
        #expect(c.command == ["make", "test"] && c.workingDir == plan.process.workdir)
        #expect(c.securityContext.capabilities.drop == ["ALL"] && c.securityContext.capabilities.add == ["NET_BIND_SERVICE"])
        #expect(!c.securityContext.allowPrivilegeEscalation && c.securityContext.readOnlyRootFilesystem && !c.securityContext.privileged)
        #expect(c.securityContext.runAsUser == Int64(plan.process.uid) && c.securityContext.runAsGroup == Int64(plan.process.gid))
        #expect(c.securityContext.seccompProfile?.type == "Localhost" && c.securityContext.seccompProfile?.localhostProfile == k.seccompProfileName)
        #expect(pod.spec.securityContext.seccompProfile?.type == "Localhost")
        #expect(k.seccompProfile == OCIExport.bundle(plan: plan))
        #expect(pod.spec.activeDeadlineSeconds == 90)
        #expect(c.resources?.limits == ["memory": String(256 << 20), "cpu": "1500m"], "\(c.resources.map { "\($0)" } ?? "none")")
        // Writable places are volumes; the root filesystem is read-only.
        #expect(Set(c.volumeMounts?.map(\.mountPath) ?? []) == ["/work/proj", "/tmp"])

        // CIDR rules in the NetworkPolicy, with DNS to the cluster's resolver only.
        let egress = k.networkPolicy.spec.egress
        #expect(egress.contains { $0.to.first?.ipBlock?.cidr == "10.0.0.0/8" && $0.ports?.map(\.protocol) == ["TCP"] && $0.ports?.map(\.port) == [443] }, "\(egress)")
        #expect(egress.contains { $0.to.first?.podSelector?.matchLabels["k8s-app"] == "kube-dns" })
        #expect(k.networkPolicy.spec.policyTypes == ["Ingress", "Egress"])
        // Host-name rules as Cilium toFQDNs, and Cilium's DNS proxy answering only them.
        let cilium = try #require(k.ciliumPolicy)
        #expect(cilium.spec.egress.contains { $0.toFQDNs?.map(\.matchPattern) == ["*.example.com"] && $0.toPorts.first?.ports.map(\.port) == ["443"] })
        #expect(cilium.spec.egress.contains { $0.toPorts.first?.rules?.dns.map(\.matchPattern) == ["*.example.com"] })

        // Every object names what the cluster does not carry, the same lines as explain.
        let lines = ExportGaps.of(plan, target: .k8s).map(\.line)
        #expect(lines.contains { $0.hasPrefix("landlock:") } && lines.contains { $0.hasPrefix("filesystem.ro:") }, "\(lines)")
        for meta in [pod.metadata, k.networkPolicy.metadata, cilium.metadata] {
            #expect(meta.annotations?[ExportGaps.annotation] == lines.joined(separator: "\n"), "\(meta.name)")
        }
    }
}

private extension OCIExport {
    /// The profile `export oci` would write for the same plan (k8s names it by file).
    static func bundle(plan: RunPlan) -> OCISpec.Seccomp? {
        (try? bundle(plan, entrypoint: .init(binary: "/opt/sandbox", libraryDirectories: [])))?.spec.linux.seccomp
    }
}
