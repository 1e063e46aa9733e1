import ArgumentParser
import FoundationEssentials
import Glibc
import SandboxExport
import SandboxKit

/// `sandbox export oci|k8s` (Docs/scale-out.md): the compiled plan for another
/// runtime, and `landlock-exec`, the entrypoint an exported OCI bundle runs.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a policy's plan as an OCI bundle or Kubernetes objects (Docs/scale-out.md).",
        subcommands: [OCI.self, K8sObjects.self])

    struct OCI: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oci",
            abstract: "Write an OCI bundle (config.json, rootfs) that runs the command under the plan.",
            usage: "sandbox export oci --policy <policy> [--bundle <dir>] -- <command> ...",
            discussion: "Run it with `runc run --bundle DIR ID` as root. What the runtime cannot carry is in the config's sandbox/not-carried annotation and `sandbox explain --target oci`.")

        @OptionGroup var options: PolicyOptions
        @Option(name: .long, help: "The bundle directory to create (default: bundle).")
        var bundle = "bundle"
        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
        var command: [String] = []

        func run() throws {
            let argv = commandLine(command)
            guard !argv.isEmpty else { fail("export oci: no command given; usage: sandbox export oci --policy P [--bundle DIR] -- CMD…") }
            let plan = compile(loadPolicy(options.policy), argv: argv, runId: "export")
            guard let binary = LoadedLibraries.executable() else { fail("export oci: cannot find this executable (/proc/self/exe)") }
            do {
                let out = try OCIExport.bundle(plan, entrypoint: .init(binary: binary, libraryDirectories: LoadedLibraries.directories()))
                try out.write(to: bundle)
            } catch { fail("export oci: \(error)") }
            print("bundle \(bundle) written (policy \(plan.policy.name)); run it with: runc run --bundle \(bundle) <id>")
            for gap in ExportGaps.of(plan, target: .oci) { print("  not carried: \(gap.line)") }
        }
    }

    struct K8sObjects: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "k8s",
            abstract: "Write a Pod, its NetworkPolicy (and CiliumNetworkPolicy for host rules) and seccomp profile as JSON.",
            usage: "sandbox export k8s --policy <policy> --image <image> [--dir <dir>] [--name <name>] -- <command> ...",
            discussion: "Apply with `kubectl apply -f DIR`; copy DIR/seccomp/* into the kubelet's seccomp directory on each node first. What a cluster cannot carry is in each object's sandbox/not-carried annotation and `sandbox explain --target k8s`.")

        @OptionGroup var options: PolicyOptions
        @Option(name: .long, help: "The directory to write (default: k8s).")
        var dir = "k8s"
        @Option(name: .long, help: "The Pod's name (default: sandbox-<policy>).")
        var name: String?
        // No default: the image is the Pod's whole file system (host paths are not
        // mounted), so which one — and whether it is pinned by digest — is the user's call,
        // not a tag this binary happens to name.
        @Option(name: .long, help: "The container image that provides the command's files (required; pin it by digest).")
        var image: String
        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
        var command: [String] = []

        func run() throws {
            let argv = commandLine(command)
            guard !argv.isEmpty else { fail("export k8s: no command given; usage: sandbox export k8s --policy P --image IMAGE [--dir DIR] -- CMD…") }
            let plan = compile(loadPolicy(options.policy), argv: argv, runId: "export")
            let podName = name ?? "sandbox-" + K8sExport.dnsLabel(plan.policy.name, limit: 50)
            guard K8sExport.dnsLabel(podName) == podName else {
                fail("export k8s: --name \(podName): use lower case letters, digits and '-' (a DNS label)")
            }
            do {
                for path in try K8sExport.objects(plan, name: podName, image: image).write(to: dir) { print(path) }
            } catch { fail("export k8s: \(error)") }
        }
    }
}

extension ExportTarget: ExpressibleByArgument {}

/// The entrypoint of an exported OCI bundle: applies the plan's Landlock ruleset
/// (the file `export oci` wrote) and execs the command.
struct LandlockExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: OCIExport.entrypointCommand,
        abstract: "Apply a plan's Landlock ruleset and exec the command (the entrypoint of an `export oci` bundle).")

    @Option(name: .long, help: "The plan's Landlock part (JSON), as `export oci` writes it.")
    var rules: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        let argv = commandLine(command)
        let plan: LandlockPlan
        do { plan = try JSONDecoder().decode(LandlockPlan.self, from: Data(contentsOf: URL(fileURLWithPath: rules))) } catch {
            fail("landlock-exec: --rules \(rules): \(error)")
        }
        let spec = LandlockSpec(abi: plan.abi, handledAccessFS: plan.handledAccessFS,
                                rules: plan.rules.map { .init(path: $0.path, hostPath: $0.path, access: $0.access) },
                                connectTCP: plan.connectTCP, bindTCP: plan.bindTCP, scopes: plan.scopes)
        do { try LandlockEntrypoint.exec(spec, argv: argv) } catch let error as KernelError {
            // Like exec: 127 not found, 126 not executable, 125 the sandbox's own failure.
            let code: Int32 = error.operation == "execvp" ? (error.errno?.rawValue == ENOENT ? 127 : 126) : exitSandboxError
            fail("landlock-exec: \(error)", code: code)
        }
    }
}
