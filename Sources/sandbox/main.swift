import ArgumentParser
import Foundation
import SandboxAudit
import SandboxExecutor
import SandboxKernel
import SandboxPlan
import SandboxPolicy

// Exit codes, like env(1), timeout(1) and container runtimes.
let exitSandboxError: Int32 = 125

struct Sandbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run untrusted commands under a declarative security policy.",
        discussion: """
            Exit status of `exec`: the command's own; 128+N if it died of signal N; \
            125 sandbox or policy error; 126 command not executable; 127 command not found.
            """,
        subcommands: [Exec.self, Check.self, Plan.self, Explain.self, Ps.self, Gc.self, Doctor.self, Audit.self])
}

/// Shared by the commands that take a policy and a command line.
struct PolicyOptions: ParsableArguments {
    // An array, so that a second --policy is seen and refused (ArgumentParser would
    // keep the last one silently); `exec`'s fast path refuses it the same way. (The
    // commands give their usage line themselves: ArgumentParser would show an array
    // as optional and repeatable.)
    @Option(name: .customLong("policy"), help: "Policy file, or the name of a shipped policy (agent, strict, …).")
    var policies: [String] = []

    var policy: String { policies[0] }

    func validate() throws {
        if policies.isEmpty { throw ValidationError("Missing expected argument '--policy <policy>'") }
        if policies.count > 1 { throw ValidationError("--policy given twice; give it once") }
    }
}

func fail(_ message: String, code: Int32 = exitSandboxError) -> Never {
    FileHandle.standardError.write(Data("sandbox: \(message)\n".utf8))
    Foundation.exit(code)
}

/// Each step below ends the process on failure through `onError`: by default a message
/// and exit 125; `exec` passes its own, which also writes the `--result`.
typealias OnError = (ExecError) -> Never

func loadPolicy(_ nameOrPath: String, relativeTo cwd: String = FileManager.default.currentDirectoryPath,
                onError: OnError = { fail($0.message) }) -> Policy {
    let loader = PolicyLoader(searchPath: PolicyLoader.defaultSearchPath())
    do {
        return try loader.load(path: try loader.resolve(nameOrPath: nameOrPath, relativeTo: cwd))
    } catch let e as PolicyError {
        // The subject: the first file at fault (the policy, or a file it extends).
        onError(ExecError(kind: .policy, step: "load", subject: e.diagnostics.first?.file ?? nameOrPath,
                          message: "invalid policy:\n" + e.diagnostics.map { "  \($0)" }.joined(separator: "\n")))
    } catch {
        onError(ExecError(kind: .policy, step: "load", subject: nameOrPath, message: "\(error)"))
    }
}

func hostFacts(_ probe: HostProbe = .probe()) -> HostFacts {
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
    if let exe = realPath("/proc/self/exe") { trusted.append(.executable(exe)) }
    if let data = DataDirectory.locate() {
        trusted.append(.policies(data.policies))
        trusted.append(.profiles(data.profiles))
    }
    for dir in (probe.environment["SANDBOX_POLICY_PATH"] ?? "").split(separator: ":") {
        trusted.append(.policySearchDirectory(dir.hasPrefix("/") ? String(dir) : probe.cwd + "/" + dir))
    }
    if let base { trusted.append(.seccompCache(base + "/.seccomp-cache")) }
    facts.trusted = trusted
    // What a broad egress allow rule must not open: the host's addresses, the bridge.
    facts.hostAddresses = HostAddresses.egressProtected()
    return facts
}

/// realpath(3), or nil if the path cannot be resolved.
func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}


func compile(_ policy: Policy, argv: [String], runId: String, probe: HostProbe = .probe(), digest: Bool = true,
             onError: OnError = { fail($0.message) }) -> RunPlan {
    do {
        return try PlanCompiler(host: hostFacts(probe)).compile(policy, argv: argv, runId: runId, digest: digest)
    } catch {
        // The subject: the policy key at fault.
        onError(ExecError(kind: .plan, step: "compile", subject: (error as? PlanError)?.key,
                          message: "policy \(policy.name): \(error)"))
    }
}

func newRunId() -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
}

func runBase(_ probe: HostProbe, onError: OnError = { fail($0.message) }) -> String {
    do { return try RunDirectory.base(rootless: probe.uid != 0, environment: probe.environment) } catch {
        onError(ExecError(kind: .setup, step: SetupStep.runDirectory.rawValue, subject: error.subject,
                          errno: error.errno, message: "\(error)"))
    }
}

/// `exec`'s work, shared by the ArgumentParser command and the fast path below.
func runExec(policyName: String, argv: [String], resultPath: String?, resultFD: Int32?) -> Never {
    // Where the result goes is settled before anything runs: the file is opened now
    // (the command could otherwise swap a directory on its path for a symlink), and
    // a given fd must be open for writing.
    var resultFDs: [Int32] = []
    var resultFile: ResultFile?
    if let path = resultPath {
        do { resultFile = try ResultFile.open(path) } catch {
            if error.errno?.rawValue == ELOOP {
                fail("--result \(path): a symlink is on its path (\(error.detail ?? "a component is a link")); refused: an earlier run could have planted it")
            }
            fail("--result: \(error)")
        }
    }
    if let fd = resultFD {
        guard FD.isWritable(fd) else { fail("--result-fd \(fd): not a descriptor open for writing") }
        resultFDs.append(fd)
    }
    func report(_ outcome: RunResult) -> Never {
        if let error = outcome.error { FileHandle.standardError.write(Data("sandbox: \(error.message)\n".utf8)) }
        let bytes = ((try? CanonicalJSON.encode(outcome)) ?? []) + [UInt8(ascii: "\n")]
        var lost = false
        // A reader that is gone is EPIPE here, not a SIGPIPE that would end the
        // supervisor with a status that looks like the command's.
        for fd in resultFDs {
            errno = 0
            if FD.writeAllWithoutSIGPIPE(fd, bytes) { continue }
            let why = errno == 0 ? "a short write" : String(cString: strerror(errno))
            FileHandle.standardError.write(Data("sandbox: --result-fd \(fd): cannot write the result: \(why)\n".utf8))
            lost = true
        }
        if let resultFile {
            do { try resultFile.write(bytes) } catch {
                FileHandle.standardError.write(Data("sandbox: --result \(resultFile.path): \(error)\n".utf8))
                lost = true
            }
        }
        // A caller that asked for the result and cannot have it must not read the
        // command's status as the whole story: 125, and the status said in words.
        if lost {
            FileHandle.standardError.write(Data("sandbox: the result is lost; exiting 125 instead of the run's status \(outcome.exitCode)\n".utf8))
            Foundation.exit(exitSandboxError)
        }
        Foundation.exit(outcome.exitCode)
    }
    let runId = newRunId()
    var policyLabel = policyName   // the file or name given, until the policy has its own name
    func refuse(_ error: ExecError) -> Never {
        report(.refused(runId: runId, policy: policyLabel, argv: argv, error: error))
    }
    guard !argv.isEmpty else {
        refuse(ExecError(kind: .plan, step: "command", message: "no command given; usage: sandbox exec --policy P -- CMD ARGS…"))
    }
    let probe = HostProbe.probe()
    let policy = loadPolicy(policyName, relativeTo: probe.cwd, onError: refuse)
    policyLabel = policy.name
    // The digest is left to the executor, which computes it while the child starts.
    let plan = compile(policy, argv: argv, runId: runId, probe: probe, digest: false, onError: refuse)
    // A result the command could reach is a result it could forge: refused.
    let mountTable = resultFile == nil ? nil : FileSystemLocation.table()   // read once
    if let resultFile, let mountTable, let at = FileSystemLocation.of(resultFile.directory, in: mountTable) {
        for step in plan.mounts where step.kind == .bind && !step.readOnly {
            guard let source = step.source, let writable = FileSystemLocation.of(source, in: mountTable),
                  writable.contains(at) else { continue }
            refuse(ExecError(kind: .plan, step: "result file", subject: resultFile.path,
                             message: "--result \(resultFile.path): it lies in \(source), which the command can write (\(step.origin)); it could move the directory and leave a forged result there. Write the result outside the writable paths"))
        }
    }
    let base = runBase(probe, onError: refuse)
    let executor = Executor(plan: plan, options: ExecOptions(runBase: base, seccompCacheDir: base + "/.seccomp-cache"))
    report(executor.run())
}

/// The start-up path of every sandboxed command: `sandbox exec --policy P
/// [--result F] [--result-fd N] -- CMD…` is parsed by hand, because building
/// ArgumentParser's command tree (reflection over every subcommand) costs more than
/// the rest of start-up. Anything else — help, a typo, another order — goes to
/// ArgumentParser, which gives the usual messages.
func fastExec(_ args: [String]) {
    guard args.count > 1, args[1] == "exec" else { return }
    var policy: String?, result: String?, resultFD: Int32?
    var seen = Set<String>()
    var i = 2
    while i < args.count {
        let a = args[i]
        if a == "--" { break }
        // Like env(1) and timeout(1): the first word that is not an option starts the
        // command; what follows it is the command's (ArgumentParser handles that form).
        guard a.hasPrefix("-") else { return }
        guard ["--policy", "--result", "--result-fd"].contains(a) else {
            if a == "-h" || a == "--help" { return }
            fail("exec: unknown option \(a); exec takes --policy P, --result FILE and --result-fd N, then -- and the command")
        }
        // Given twice is a mistake, never "the last wins" (which policy would run?).
        guard seen.insert(a).inserted else { fail("exec: \(a) given twice; give it once") }
        guard i + 1 < args.count else { return }
        switch a {
        case "--policy": policy = args[i + 1]
        case "--result": result = args[i + 1]
        default: guard let n = Int32(args[i + 1]) else { return }; resultFD = n
        }
        i += 2
    }
    guard i < args.count, args[i] == "--", let policy else { return }
    runExec(policyName: policy, argv: Array(args[(i + 1)...]), resultPath: result, resultFD: resultFD)
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a sandbox built from a policy.",
        usage: "sandbox exec --policy <policy> [--result <result>] [--result-fd <result-fd>] [--] <command> ...",
        discussion: "Example: sandbox exec --policy agent -- python3 -c 'print(1)'")

    @OptionGroup var options: PolicyOptions
    @Option(name: .long, help: "Write the run result (JSON) to this file.")
    var result: String?
    @Option(name: .customLong("result-fd"), help: "Write the run result (JSON) to this open file descriptor.")
    var resultFD: Int32?
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        runExec(policyName: options.policy, argv: argv, resultPath: result, resultFD: resultFD)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate policy files; print every problem found. Exit 0 or 125.")

    @Argument(help: "Policy files or names.")
    var files: [String]

    func run() throws {
        let loader = PolicyLoader(searchPath: PolicyLoader.defaultSearchPath())
        var bad = false
        for f in files {
            do {
                let path = try loader.resolve(nameOrPath: f, relativeTo: FileManager.default.currentDirectoryPath)
                let p = try loader.load(path: path)
                print("\(path): ok (policy \"\(p.name)\")")
            } catch let e as PolicyError {
                bad = true
                for d in e.diagnostics { FileHandle.standardError.write(Data("\(d)\n".utf8)) }
            } catch {
                bad = true
                FileHandle.standardError.write(Data("\(f): \(error)\n".utf8))
            }
        }
        Foundation.exit(bad ? exitSandboxError : 0)
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the RunPlan a policy compiles to (JSON, with its digest).",
        usage: "sandbox plan --policy <policy> [--json] [--run-id <run-id>] [--] [<command> ...]",
        discussion: "The plan is deterministic: the same policy, command and host give the same digest.")

    @OptionGroup var options: PolicyOptions
    @Flag(name: .long, help: "Print JSON (the default; kept for scripts that pass it).")
    var json = false
    @Option(name: .customLong("run-id"), help: "Run id to plan for (`{run_id}` in paths): \(RunID.rule).")
    var runId = "plan"
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        var argv = command.first == "--" ? Array(command.dropFirst()) : command
        if argv.isEmpty { argv = ["/bin/sh"] }
        let plan = compile(loadPolicy(options.policy), argv: argv, runId: runId)
        print((try? plan.prettyJSON()) ?? "{}")
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise for people what a policy allows and denies.",
        usage: "sandbox explain --policy <policy>")

    @OptionGroup var options: PolicyOptions

    func run() throws {
        let policy = loadPolicy(options.policy)
        let probe = HostProbe.probe()
        let plan = compile(policy, argv: ["<command>"], runId: "explain", probe: probe)
        print(Explanation.text(for: plan, policy: policy, host: hostFacts(probe)))
    }
}

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List live runs (those whose supervisor still holds the run lock).")

    func run() throws {
        let probe = HostProbe.probe()
        let base = runBase(probe)
        let live = RunDirectory.list(base: base).filter(\.live)
        print("RUN ID        POLICY        STARTED                STATE     COMMAND")
        for entry in live {
            guard let r = RunRecord.read(runDirectory: entry.path) else { print("\(entry.id.padding(14))?"); continue }
            let started = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(r.started)))
            // One line per run whatever the command line holds: newlines and other
            // control characters are printed escaped (RunRecord.printable).
            print("\(RunRecord.printable(r.runId).padding(14))\(RunRecord.printable(r.policy).padding(14))"
                  + "\(started.padding(23))\(r.state.rawValue.padding(10))\(r.commandLine)")
        }
    }
}

struct Gc: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove what runs whose supervisor died left behind (run directories, cgroups).")

    func run() throws {
        let probe = HostProbe.probe()
        let base = runBase(probe)
        let host = CgroupHost.probe()
        var removed = 0
        for entry in RunDirectory.list(base: base) where !entry.live {
            if RunDirectory.reclaim(base: base, id: entry.id, cleanup: {
                EgressNetwork.removeLeftovers(runId: entry.id, runDir: entry.path)
                let record = RunRecord.read(runDirectory: entry.path)
                // The host uid the run leased, recorded before the lease was taken.
                if let uid = record?.hostUID {
                    UidLease.releaseLeftover(directory: UidLease.directory(runBase: base), uid: uid, runId: entry.id)
                }
                // The directories the run recorded (before it made any: every place it
                // may have one). Without a record (a supervisor killed before writing
                // it), by this run's id in every place a run of this invoker can have a
                // cgroup: nested in our own v1 cgroups (`<invoker>/sandbox-<id>`) and
                // `<mount>/sandbox/<id>`.
                if let dirs = record?.cgroups {
                    RunCgroup.removeLeftovers(runId: entry.id, directories: dirs, host: host)
                } else {
                    RunCgroup.removeLeftovers(runId: entry.id, host: host)
                }
            }) {
                print("removed \(entry.id)")
                removed += 1
            }
        }
        // Only what a stale run directory names, under that directory's lock: a run
        // creates its directory (and takes the lock) before its cgroup and removes the
        // cgroup before the directory (keeping the directory if that removal failed),
        // so no cgroup of ours outlives its directory, and a cgroup found without one
        // may belong to a run being created right now (or to another user's run
        // base). Those are never touched.
        for name in RunDirectory.removeAbandonedCreations(base: base) { print("removed \(name)") }
        for uid in UidLease.releaseOrphans(directory: UidLease.directory(runBase: base), runBase: base) {
            print("released uid lease \(uid)")
        }
        print("\(removed) stale run(s) removed")
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with audit logs ([audit] path).", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an audit log's chain. Exit 0 and counts when intact; 1 naming the first bad line.",
            discussion: "A run with a start and no end is a warning (still running, its supervisor died, or the end of the file was cut).")

        @Argument(help: "The audit log.")
        var file: String
        @Option(name: .customLong("key-file"), help: "The chain's HMAC key (the policy's [audit] key_file).")
        var keyFile: String?

        func run() throws {
            var key: AuditKey?
            if let keyFile {
                do { key = try AuditKey.load(path: keyFile, invoker: getuid()) } catch { fail("\(error)") }
            }
            let bytes: [UInt8]
            do { bytes = try AppendOnlyFile.contents(of: file) } catch { fail("audit verify: \(error)") }
            let report = AuditVerifier.verify(bytes, key: key)
            for w in report.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            if let problem = report.problem {
                FileHandle.standardError.write(Data("\(file): \(problem)\n".utf8))
                Foundation.exit(1)
            }
            print("\(file): ok: \(report.records) records, \(report.runsStarted) runs started, \(report.runsEnded) ended, \(report.denials) denials (\(report.link) chain); head \(report.head ?? "-")")
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

// A file-size limit (`ulimit -f`) the invoker set must make a write fail with EFBIG,
// reported (125, naming the file), not kill the supervisor with SIGXFSZ: its status
// 153 would look like the command's. The child resets every disposition before execve.
signal(SIGXFSZ, SIG_IGN)
fastExec(CommandLine.arguments)
do {
    var command = try Sandbox.parseAsRoot()
    try command.run()
} catch {
    // A usage error is a sandbox error (125), never a status a command could also
    // return (ArgumentParser's default is 64); help and version still exit 0.
    if Sandbox.exitCode(for: error).rawValue == 64 {
        FileHandle.standardError.write(Data((Sandbox.fullMessage(for: error) + "\n").utf8))
        Foundation.exit(exitSandboxError)
    }
    Sandbox.exit(withError: error)
}
