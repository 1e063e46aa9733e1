// The one module a harness imports: the whole pipeline (policy, plan, kernel, audit,
// executor) re-exported, and the steps `sandbox exec` takes around the Executor, so
// a harness runs a command exactly as the CLI does without copying code out of it.
// Docs/library.md has the example.
@_exported import SandboxAudit
@_exported import SandboxExecutor
@_exported import SandboxKernel
@_exported import SandboxPlan
@_exported import SandboxPolicy
@_exported import SandboxVocabulary
import Glibc

/// The steps of a run before ``Executor/run()``, as `sandbox exec` takes them: a run
/// id, the policy, the host facts, the plan, the run base. Each failure is the
/// ``ExecError`` `exec` reports (kind `policy`, `plan` or `setup`), so a caller can
/// turn it into the same refused ``RunResult`` (``RunResult/refused(runId:policy:argv:error:)``).
public enum RunSteps {
    /// A fresh run id: 12 random hex digits (``RunID``'s rule).
    public static func newRunId() -> String {
        // Twelve hex digits, as bytes: an array of Characters was its own first use of
        // generic code on every run's start-up.
        // One getrandom(2) for the 48 bits, not one per digit.
        var g = SystemRandomNumberGenerator()
        let bits = g.next()
        let digits: StaticString = "0123456789abcdef"
        return digits.withUTF8Buffer { d in
            String(unsafeUninitializedCapacity: 12) { out in
                for i in 0..<12 { out[i] = d[Int((bits >> UInt64(4 * i)) & 15)] }
                return 12
            }
        }
    }

    /// Loads a policy by name (the search path: `SANDBOX_POLICY_PATH`, then the shipped
    /// policies) or by path (relative to `cwd`).
    public static func loadPolicy(_ nameOrPath: String, relativeTo cwd: String,
                                  searchPath: [String] = PolicyLoader.defaultSearchPath()) throws(ExecError) -> Policy {
        let loader = PolicyLoader(searchPath: searchPath)
        do {
            return try loader.load(path: try loader.resolve(nameOrPath: nameOrPath, relativeTo: cwd))
        } catch let e as PolicyError {
            // The subject: the first file at fault (the policy, or a file it extends).
            throw ExecError(kind: .policy, step: "load", subject: e.diagnostics.first?.file ?? nameOrPath,
                            message: "invalid policy:\n" + e.diagnostics.map { "  \($0)" }.joinedText(separator: "\n"))
        } catch {
            throw ExecError(kind: .policy, step: "load", subject: nameOrPath, message: "\(error)")
        }
    }

    /// The planner's view of this host and invoker, as `exec` builds it: the probe,
    /// the identity of the working directory (of the calling thread), what later runs
    /// trust (the executable, its data, the policy search path, the run base), and the
    /// addresses a broad egress rule must not open.
    ///
    /// - Parameter network: the policy's network mode, when known. Only an egress plan
    ///   reads the host's addresses and resolvers (`NetworkRules`), so for another mode
    ///   they are not gathered: a netlink dump of every address on every run
    ///   (`HostAddressesTests` checks such a plan is the same with or without them).
    public static func hostFacts(_ probe: HostProbe = .probe(), network: NetworkMode? = nil) -> HostFacts {
        var facts = HostFacts(arch: probe.arch, kernelRelease: probe.kernelRelease, landlockABI: probe.landlockABI,
                              invokerUID: probe.uid, invokerGID: probe.gid, cwd: probe.cwd, home: probe.home,
                              environment: probe.environment, files: HostFiles())
        // The inode the invoker runs in: the supervisor binds this one, whatever its path
        // names by the time the run starts.
        facts.cwdIdentity = MountSources.workingDirectoryIdentity().map { FileIdentity(device: $0.device, inode: $0.inode) }
        // What later runs trust; the planner refuses a policy that makes any of it
        // writable (and the policy and profile files it was built from).
        let base = try? RunDirectory.base(rootless: probe.uid != 0, environment: probe.environment)
        facts.runBase = base
        var trusted: [TrustedPath] = []
        let exe = LoadedLibraries.executable()
        if let exe { trusted.append(.executable(exe)) }
        if let start = LoadedLibraries.executableAtStart, exe.map({ !PathText.same($0, start) }) ?? true {
            trusted.append(.executable(start))
        }
        // Every place the data directory is looked for up to the one found (one made
        // at an earlier place would be found first), with and without $SANDBOX_DATA_DIR.
        for data in DataDirectory.placesLaterRunsTrust() {
            trusted.append(.policies(data.policies))
            trusted.append(.profiles(data.profiles))
        }
        for dir in (probe.environment["SANDBOX_POLICY_PATH"] ?? "").split(separator: ":") {
            trusted.append(.policySearchDirectory(dir.hasPrefix("/") ? String(dir) : probe.cwd + "/" + dir))
        }
        if let base { trusted.append(.seccompCache(seccompCacheDirectory(runBase: base))) }
        facts.trusted = trusted
        // What a broad egress allow rule must not open: the host's addresses, the bridge.
        if network == nil || network == .egress {
            do { facts.hostAddresses = try HostAddresses.egressProtected() } catch { facts.hostAddressesError = "\(error)" }
            facts.hostResolvers = HostResolvers.read()
        }
        return facts
    }

    /// The plan for `argv` under `policy` on this host. `digest: false` leaves the
    /// digest to the executor, which computes it while the child starts.
    public static func plan(_ policy: Policy, argv: [String], runId: String, host: HostFacts,
                            digest: Bool = true) throws(ExecError) -> RunPlan {
        var host = host
        // Only a policy that accepts either isolation needs to know which it gets here.
        if policy.process.isolation == .namespacesOrNested, host.namespaces == .notProbed {
            host.namespaces = HostProbe.namespaceRefusal().map { .blocked($0) } ?? .available
        }
        do {
            return try PlanCompiler(host: host).compile(policy, argv: argv, runId: runId, digest: digest)
        } catch {
            // The subject: the policy key at fault.
            throw ExecError(kind: .plan, step: "compile", subject: (error as? PlanError)?.key,
                            message: "policy \(policy.name): \(error)")
        }
    }

    /// Where this invoker's run directories live (`/run/sandbox`, or
    /// `$XDG_RUNTIME_DIR/sandbox` rootless).
    public static func runBase(_ probe: HostProbe) throws(ExecError) -> String {
        do { return try RunDirectory.base(rootless: probe.uid != 0, environment: probe.environment) } catch {
            throw ExecError(kind: .setup, step: "run directory", subject: error.subject,
                            errno: error.errno, message: "\(error)")
        }
    }

    /// A result the command could reach is a result it could forge: refused when the
    /// directory the result file goes to (`--result`'s) lies in a writable bind of
    /// `plan` (compared by filesystem location, so bind-mount aliases count).
    public static func checkResultDirectory(_ directory: String, path: String, plan: RunPlan) throws(ExecError) {
        let table = FileSystemLocation.table()
        guard let at = FileSystemLocation.of(directory, in: table) else { return }
        for step in plan.mounts where step.kind == .bind && !step.readOnly {
            guard let source = step.source, let writable = FileSystemLocation.of(source, in: table),
                  writable.contains(at) else { continue }
            throw ExecError(kind: .plan, step: "result file", subject: path,
                            message: "--result \(path): it lies in \(source), which the command can write (\(step.origin)); it could move the directory and leave a forged result there. Write the result outside the writable paths")
        }
    }

    /// The options `exec` runs with: this run base and its seccomp cache.
    public static func options(runBase: String) -> ExecOptions {
        ExecOptions(runBase: runBase, seccompCacheDir: seccompCacheDirectory(runBase: runBase))
    }

    /// Where compiled seccomp filters are cached for a run base (`exec`, the trust
    /// checks, `gc`).
    public static func seccompCacheDirectory(runBase: String) -> String { runBase + "/.seccomp-cache" }
}
