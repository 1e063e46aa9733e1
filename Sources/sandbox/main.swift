import ArgumentParser
import FoundationEssentials
import Glibc
import SandboxKit
import SandboxServe
import SandboxExport

// Exit codes, like env(1), timeout(1) and container runtimes.
let exitSandboxError: Int32 = 125

// A descriptor 0, 1 or 2 closed when we started would be taken by the first file this
// process opens (a connection to `sandbox serve`, a run's directory, a pidfd) and
// handed to the command as its stdin, stdout or stderr: each is opened on /dev/null
// first, or the run refused.
for stdio: Int32 in 0...2 where fcntl(stdio, F_GETFD) < 0 {
    guard open("/dev/null", O_RDWR) == stdio else {
        printError("sandbox: descriptor \(stdio) is closed and cannot be opened on /dev/null\n")
        exit(exitSandboxError)
    }
}

struct Sandbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run untrusted commands under a declarative security policy.",
        discussion: """
            Exit status of `exec`: the command's own; 128+N if it died of signal N; \
            125 sandbox or policy error; 126 command not executable; 127 command not found.
            """,
        version: SandboxVersion.text,
        subcommands: [Exec.self, Serve.self, Check.self, Plan.self, Explain.self, Policies.self, Ps.self, Gc.self, Doctor.self,
                      Audit.self, Completions.self, Man.self, Export.self, LandlockExec.self])
}

/// Shared by the commands that take a policy and a command line.
struct PolicyOptions: ParsableArguments {
    // An array, so that a second --policy is seen and refused (ArgumentParser would
    // keep the last one silently); `exec`'s fast path refuses it the same way. (The
    // commands give their usage line themselves: ArgumentParser would show an array
    // as optional and repeatable.)
    @Option(name: .customLong("policy"), help: "Policy file, or the name of a policy (sandbox policies lists them).",
            completion: .custom { _, _, _ in PolicyCatalog().names })
    var policies: [String] = []

    var policy: String { policies[0] }

    func validate() throws {
        if policies.isEmpty { throw ValidationError("Missing expected argument '--policy <policy>'") }
        if policies.count > 1 { throw ValidationError("--policy given twice; give it once") }
    }
}

/// Writes `text` whole to stderr.
func printError(_ text: String) { _ = FD.writeAll(STDERR_FILENO, Array(text.utf8)) }

func fail(_ message: String, code: Int32 = exitSandboxError) -> Never {
    printError("sandbox: \(message)\n")
    Glibc.exit(code)
}

/// Each step below ends the process on failure through `onError`: by default a message
/// and exit 125; `exec` passes its own, which also writes the `--result`.
typealias OnError = (ExecError) -> Never

func loadPolicy(_ nameOrPath: String, relativeTo cwd: String = HostProbe.currentDirectory(),
                onError: OnError = { fail($0.message) }) -> Policy {
    do { return try RunSteps.loadPolicy(nameOrPath, relativeTo: cwd) } catch { onError(error) }
}

func hostFacts(_ probe: HostProbe = .probe(), network: NetworkMode? = nil) -> HostFacts {
    RunSteps.hostFacts(probe, network: network)
}

/// The command of a `.captureForPassthrough` argument: ArgumentParser keeps the `--`
/// that ends the options as its first element.
func commandLine(_ captured: [String]) -> [String] {
    captured.first == "--" ? Array(captured.dropFirst()) : captured
}

func compile(_ policy: Policy, argv: [String], runId: String, probe: HostProbe = .probe(), digest: Bool = true,
             onError: OnError = { fail($0.message) }) -> RunPlan {
    do {
        return try RunSteps.plan(policy, argv: argv, runId: runId, host: hostFacts(probe, network: policy.network.mode),
                                 digest: digest)
    } catch {
        onError(error)
    }
}

func runBase(_ probe: HostProbe, onError: OnError = { fail($0.message) }) -> String {
    do { return try RunSteps.runBase(probe) } catch { onError(error) }
}

/// `exec`'s work, shared by the ArgumentParser command and the fast path below.
func runExec(policyName: String, argv: [String], resultPath: String?, resultFD: Int32?, server: String? = nil) -> Never {
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
        deliver(outcome.canonicalJSON() + [UInt8(ascii: "\n")], exitCode: outcome.exitCode,
                errorMessage: outcome.error?.message)
    }
    func deliver(_ bytes: [UInt8], exitCode: Int32, errorMessage: String?) -> Never {
        if let errorMessage { printError("sandbox: \(errorMessage)\n") }
        var lost = false
        // A reader that is gone is EPIPE here, not a SIGPIPE that would end the
        // supervisor with a status that looks like the command's.
        for fd in resultFDs {
            errno = 0
            if FD.writeAllWithoutSIGPIPE(fd, bytes) { continue }
            let why = errno == 0 ? "a short write" : String(cString: strerror(errno))
            printError("sandbox: --result-fd \(fd): cannot write the result: \(why)\n")
            lost = true
        }
        if let resultFile {
            do { try resultFile.write(bytes) } catch {
                printError("sandbox: --result \(resultFile.path): \(error)\n")
                lost = true
            }
        }
        // A caller that asked for the result and cannot have it must not read the
        // command's status as the whole story: 125, and the status said in words.
        if lost {
            printError("sandbox: the result is lost; exiting 125 instead of the run's status \(exitCode)\n")
            Glibc.exit(exitSandboxError)
        }
        Glibc.exit(exitCode)
    }
    // A thin client: the server loads, plans and runs (Docs/serve.md).
    if let server {
        guard !argv.isEmpty else { fail("no command given; usage: sandbox exec --server S --policy P -- CMD ARGS…") }
        let probe = HostProbe.probe()
        do {
            let reply = try ServeClient.run(socket: server, policy: policyName, argv: argv, cwd: probe.cwd,
                                            environment: probe.environment, result: resultFile)
            deliver(ServeClient.result(of: reply.line), exitCode: reply.exitCode, errorMessage: reply.errorMessage)
        } catch { fail("--server \(error)") }
    }
    let runId = RunSteps.newRunId()
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
    if let resultFile {
        do { try RunSteps.checkResultDirectory(resultFile.directory, path: resultFile.path, plan: plan) } catch { refuse(error) }
    }
    let base = runBase(probe, onError: refuse)
    let executor = Executor(plan: plan, options: RunSteps.options(runBase: base))
    report(executor.run())
}

/// The start-up path of every sandboxed command: `sandbox exec --policy P
/// [--result F] [--result-fd N] -- CMD…` is parsed by hand, because building
/// ArgumentParser's command tree (reflection over every subcommand) costs more than
/// the rest of start-up. Anything else — help, a typo, another order — goes to
/// ArgumentParser, which gives the usual messages.
func fastExec(_ args: [String]) {
    guard args.count > 1, args[1] == "exec" else { return }
    var policy: String?, result: String?, resultFD: Int32?, server: String?
    var seen = Set<String>()
    var i = 2
    while i < args.count {
        let a = args[i]
        if a == "--" { break }
        // Like env(1) and timeout(1): the first word that is not an option starts the
        // command; what follows it is the command's (ArgumentParser handles that form).
        guard a.hasPrefix("-") else { return }
        guard ["--policy", "--result", "--result-fd", "--server"].contains(a) else {
            if a == "-h" || a == "--help" { return }
            fail("exec: unknown option \(a); exec takes --policy P, --result FILE, --result-fd N and --server SOCKET, then -- and the command")
        }
        // Given twice is a mistake, never "the last wins" (which policy would run?).
        guard seen.insert(a).inserted else { fail("exec: \(a) given twice; give it once") }
        guard i + 1 < args.count else { return }
        switch a {
        case "--policy": policy = args[i + 1]
        case "--result": result = args[i + 1]
        case "--server": server = args[i + 1]
        default: guard let n = Int32(args[i + 1]) else { return }; resultFD = n
        }
        i += 2
    }
    guard i < args.count, args[i] == "--", let policy else { return }
    runExec(policyName: policy, argv: Array(args[(i + 1)...]), resultPath: result, resultFD: resultFD, server: server)
}

/// `sandbox plan --policy P [--json] [-- CMD…]` parsed by hand, as `exec` is:
/// building ArgumentParser's command tree was a sixth of `plan`'s time. Anything
/// else (`--run-id`, help, a second `--policy`, another order) goes to ArgumentParser.
func fastPlan(_ args: [String]) {
    guard args.count > 3, args[1] == "plan", args[2] == "--policy", !args[3].hasPrefix("-") else { return }
    let policy = args[3]
    var i = 4
    if i < args.count, args[i] == "--json" { i += 1 }
    var argv: [String] = []
    if i < args.count {
        guard args[i] == "--" else { return }
        argv = Array(args[(i + 1)...])
    }
    runPlan(policyName: policy, argv: argv, runId: "plan")
    exit(0)
}

/// `plan`'s work, shared by the ArgumentParser command and the fast path above.
func runPlan(policyName: String, argv: [String], runId: String) {
    let probe = HostProbe.probe()
    let plan = compile(loadPolicy(policyName, relativeTo: probe.cwd), argv: argv.isEmpty ? ["/bin/sh"] : argv,
                       runId: runId, probe: probe)
    print((try? plan.prettyJSON()) ?? "{}")
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a sandbox built from a policy.",
        usage: "sandbox exec --policy <policy> [--result <result>] [--result-fd <result-fd>] [--server <socket>] [--] <command> ...",
        discussion: "Example: sandbox exec --policy agent -- python3 -c 'print(1)'")

    @OptionGroup var options: PolicyOptions
    @Option(name: .long, help: "Write the run result (JSON) to this file.")
    var result: String?
    @Option(name: .customLong("result-fd"), help: "Write the run result (JSON) to this open file descriptor.")
    var resultFD: Int32?
    @Option(name: .long, help: "Run through this `sandbox serve` socket instead of starting a supervisor.")
    var server: String?
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        let argv = commandLine(command)
        runExec(policyName: options.policy, argv: argv, resultPath: result, resultFD: resultFD, server: server)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve runs over a unix socket: JSON lines, stdio passed as descriptors (Docs/serve.md).",
        discussion: "Each request runs in a fresh sandbox exactly as `exec` would. Stops on SIGINT/SIGTERM/SIGHUP, cancelling its runs.")

    @Option(name: .long, help: "The socket to create (in a directory only you can write).")
    var socket: String
    @Option(name: .long, help: "Let this group's members connect (mode 0660); a root server still serves root only.")
    var group: String?
    @Option(name: .customLong("built-ahead"), help: "Sandboxes built ahead of their command for the last clients' policy and directory (default 2; 0: none).")
    var builtAhead: Int = WarmSandboxes.defaultCapacity

    func run() throws {
        guard builtAhead >= 0, builtAhead <= 16 else { fail("serve: --built-ahead \(builtAhead): between 0 and 16") }
        var gid: UInt32?
        if let group {
            if let n = UInt32(group) { gid = n } else if let g = getgrnam(group) { gid = g.pointee.gr_gid } else {
                fail("serve: --group \(group): no such group")
            }
        }
        do {
            var limits = Server.Limits()
            limits.sandboxesBuiltAhead = builtAhead
            let server = try Server(group: gid, limits: limits)
            try server.serve(path: socket) {
                printError("sandbox: serving on \(socket)\n")
            }
        } catch { fail("serve: \(error)") }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate policy files; print every problem found. Exit 0 or 125.")

    @Argument(help: "Policy files or names.")
    var files: [String]

    func run() throws {
        let loader = PolicyLoader(searchPath: PolicyLoader.defaultSearchPath())
        var bad = false
        for f in files {
            do {
                let path = try loader.resolve(nameOrPath: f, relativeTo: HostProbe.currentDirectory())
                let p = try loader.load(path: path)
                print("\(path): ok (policy \"\(p.name)\")")
            } catch let e as PolicyError {
                bad = true
                for d in e.diagnostics { printError("\(d)\n") }
            } catch {
                bad = true
                printError("\(f): \(error)\n")
            }
        }
        Glibc.exit(bad ? exitSandboxError : 0)
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
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
        runPlan(policyName: options.policy, argv: commandLine(command), runId: runId)
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Summarise for people what a policy allows and denies.",
        usage: "sandbox explain --policy <policy> [--target oci|k8s]")

    @OptionGroup var options: PolicyOptions
    @Option(name: .long, help: "List what `export oci` or `export k8s` cannot carry of the plan, one a line.")
    var target: ExportTarget?

    func run() throws {
        let policy = loadPolicy(options.policy)
        let probe = HostProbe.probe()
        let plan = compile(policy, argv: ["<command>"], runId: "explain", probe: probe)
        if let target {
            for gap in ExportGaps.of(plan, target: target) { print(gap.line) }
            return
        }
        print(Explanation.text(for: plan, policy: policy, host: hostFacts(probe)))
        print(Self.hostVerdict(plan, uid: probe.uid))
    }

    /// Whether `exec` would run this plan on this host as this user — the same
    /// verdict as `sandbox doctor` gives each shipped policy — so the limits shown
    /// above come with a sign when `exec` would refuse them.
    static func hostVerdict(_ plan: RunPlan, uid: UInt32) -> String {
        let (blockers, without) = Diagnosis.verdict(plan, on: HostFeatures.probe(), idmap: MountSources.idmapProblem(at:))
        let who = uid == 0 ? "root" : "uid \(uid) (rootless)"
        var out = ["", "On this host, as \(who): " + (blockers.isEmpty ? "runs." : "cannot run:")]
        out += blockers.map { "  - \($0.key): \($0.reason)" }
        if !without.isEmpty { out.append("  runs without (best-effort): " + without.joinedText(separator: "; ")) }
        return out.joinedText(separator: "\n")
    }
}

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List live runs (those whose supervisor still holds the run lock).")

    func run() throws {
        let probe = HostProbe.probe()
        let base = runBase(probe)
        let live = RunDirectory.list(base: base).filter(\.live)
        print("RUN ID        POLICY        STARTED                STATE     COMMAND")
        for entry in live {
            guard let r = RunRecord.read(runDirectory: entry.path) else { print("\(entry.id.padding(14))?"); continue }
            let started = Date(timeIntervalSince1970: TimeInterval(r.started)).ISO8601Format()
            // One line per run whatever the command line holds: newlines and other
            // control characters are printed escaped (RunRecord.printable).
            print("\(RunRecord.printable(r.runId).padding(14))\(RunRecord.printable(r.policy).padding(14))"
                  + "\(started.padding(23))\(r.state.rawValue.padding(10))\(r.commandLine)")
        }
    }
}

struct Gc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove what runs whose supervisor died left behind (run directories, cgroups).")

    func run() throws {
        let probe = HostProbe.probe()
        let base = runBase(probe)
        let host = CgroupHost.probe()
        var removed = 0
        for entry in RunDirectory.list(base: base) where !entry.live {
            if RunDirectory.reclaim(base: base, id: entry.id, cleanup: {
                let record = RunRecord.read(runDirectory: entry.path)
                // The cgroups first: the directories the run recorded (before it made
                // any: every place it may have one). Without a record (a supervisor
                // killed before writing it), by this run's id in every place a run of
                // this invoker can have a cgroup: nested in our own v1 cgroups
                // (`<invoker>/sandbox-<id>`) and `<mount>/sandbox/<id>`. One that
                // cannot be removed holds a process of the run that even a kill did
                // not end (an abandoned run, asleep in the kernel): the run stays,
                // its uid lease with it, until a later gc (red team, session 42: gc
                // released the uid of a process still running as it, and the cgroups
                // lost their record).
                let errors = RunCgroup.directoriesLeft(
                    record?.cgroups.map { RunCgroup.removeLeftovers(runId: entry.id, directories: $0, host: host) }
                        ?? RunCgroup.removeLeftovers(runId: entry.id, host: host))
                guard errors.isEmpty else {
                    let why = errors.map { "\($0)" }.joinedText(separator: "; ")
                    printError("sandbox gc: kept \(entry.id): its cgroup could not be removed (\(why)); a process of it (or a cgroup in it) is left — run gc again once it has ended\n")
                    return false
                }
                // A run with no cgroup (no limits) has nothing above to end it: a process
                // still running as its uid keeps the lease and the run.
                if let uid = record?.hostUID, UidLease.inUse(uid) {
                    printError("sandbox gc: kept \(entry.id): a process still runs as its host uid \(uid) — run gc again once it has ended\n")
                    return false
                }
                EgressNetwork.removeLeftovers(runId: entry.id, runDir: entry.path)
                // The host uid the run leased, recorded before the lease was taken.
                if let uid = record?.hostUID {
                    UidLease.releaseLeftover(directory: UidLease.directory(runBase: base), uid: uid, runId: entry.id)
                }
                return true
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
        // Host veths of runs that are over, kept by a namespace still held somewhere
        // (teardown leaves deleting them to the kernel, with the namespace).
        for name in EgressNetwork.removeOrphanLinks(runBases: [base]) { print("removed veth \(name)") }
        for uid in UidLease.releaseOrphans(directory: UidLease.directory(runBase: base), runBase: base) {
            print("released uid lease \(uid)")
        }
        // Temporary files of an atomic write whose writer was killed before its rename
        // (the network state, the Landlock observer's note, seccomp cache entries).
        for dir in [base, RunSteps.seccompCacheDirectory(runBase: base)] {
            for name in FD.removeAbandonedTemporaries(in: dir) { print("removed \(dir)/\(name)") }
        }
        print("\(removed) stale run(s) removed")
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Work with audit logs ([audit] path).", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
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
            for w in report.warnings { printError("warning: \(w)\n") }
            if let problem = report.problem {
                printError("\(file): \(problem)\n")
                Glibc.exit(1)
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

// The loader is done with the executable's relocation table (1.1 MiB, read once
// before main): unmapped, it is not in the supervisor's resident set for the run
// (ExecutableImage). Nothing depends on the result.
ExecutableImage.releaseRelocationPages()
// A file-size limit (`ulimit -f`) the invoker set must make a write fail with EFBIG,
// reported (125, naming the file), not kill the supervisor with SIGXFSZ: its status
// 153 would look like the command's. The child resets every disposition before execve.
signal(SIGXFSZ, SIG_IGN)
#if SANDBOX_STATIC_CXX
// Built with the C++ runtime linked in (Package.swift, SANDBOX_STATIC_CXX). A shared
// libstdc++ loaded as well means the Swift runtime is the shared one (a build without
// --static-swift-stdlib), and two C++ runtimes in one process misread policy numbers:
// refuse to run rather than misread a limit.
if dlopen("libstdc++.so.6", RTLD_NOLOAD | RTLD_LAZY) != nil {
    fputs("sandbox: this binary links the C++ runtime statically (SANDBOX_STATIC_CXX=1) but the shared one is loaded too: build it with --static-swift-stdlib, or without SANDBOX_STATIC_CXX\n", stderr)
    exit(exitSandboxError)
}
#endif
// Run as root, not dumpable from the start: every subcommand may clone a copy of this
// process or a helper sharing its memory (SupervisorHardening).
SupervisorHardening.apply()
fastExec(CommandLine.arguments)
fastPlan(CommandLine.arguments)
do {
    var command = try Sandbox.parseAsRoot()
    try command.run()
} catch {
    // A usage error is a sandbox error (125), never a status a command could also
    // return (ArgumentParser's default is 64); help and version still exit 0.
    if Sandbox.exitCode(for: error).rawValue == 64 {
        printError(Sandbox.fullMessage(for: error) + "\n")
        Glibc.exit(exitSandboxError)
    }
    Sandbox.exit(withError: error)
}
