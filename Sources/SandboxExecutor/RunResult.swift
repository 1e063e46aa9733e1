import SandboxKernel
import SandboxPlan
import SandboxVocabulary

/// How a run ended, written as JSON for `--result`/`--result-fd`. Stdout and stderr
/// stay the command's own.
public struct RunResult: Codable, Sendable, Equatable {
    public var runId: String
    public var policy: String
    public var planDigest: String
    public var argv: [String]
    /// The exit status `sandbox exec` returns: the command's own, 128+N for signal N,
    /// 125 sandbox/policy error, 126 not executable, 127 not found.
    public var exitCode: Int32
    /// The signal that ended the command, if any.
    public var signal: Int32?
    public var timedOut: Bool
    public var wallMs: UInt64
    /// The run's CPU time, user and system, in ms: the one CPU figure of the result
    /// (`cpuSource` says where it comes from).
    ///
    /// - `cgroup`: the run's cgroup account, when the run has a cgroup (any
    ///   `[resources]` limit): v2's `cpu.stat`; v1's exact `cpuacct.usage` split in
    ///   the proportion of its tick-sampled `usage_user`/`usage_sys` (those alone read
    ///   0.53–0.73 s for an exact 0.50 s on a loaded host). Complete: every task that
    ///   ran in the run, reaped or not.
    /// - `rusage`: without a cgroup, the sandbox init's rusage of what it reaped and
    ///   its own (its report on the status pipe, else what `waitid` gives for it).
    ///   The init kills and reaps what the command left before it reports, so a
    ///   background process is counted; still a lower bound: the kernel drops the time
    ///   of a process reaped without a wait (its parent ignores SIGCHLD) and of those
    ///   still running when the init is killed (a timeout's kill).
    public var cpuUserMs: UInt64
    public var cpuSystemMs: UInt64
    /// Where `cpuUserMs`/`cpuSystemMs` come from; nil when nothing ran.
    public var cpuSource: CPUSource? = nil
    /// Set when the sandbox could not start the command (exit code 125/126/127), or
    /// ended it for a violation: where it failed and why, as fields a program can act
    /// on (see ``Failure``).
    public var error: Failure?
    /// Protections the policy allowed to be skipped (`best-effort`) that were skipped.
    public var notApplied: [String]
    public var fences: Fences
    /// What the command tried and was denied (filled by the fences that report it):
    /// one entry per syscall, at most `Violation.maxEntries` of them (see `ViolationLog`).
    public var violations: [Violation]
    /// Destinations the egress firewall refused, with packet counts and why (egress runs).
    public var egressDenied: [EgressDenial]
    /// Everything the run tried and was denied, one entry per (kind, what, detail):
    /// the denial account (Docs/denials.md). Kinds that could not be observed on this
    /// run are named in `notApplied` (`denials: … not observed: why`).
    public var denials: [Denial] = []
    /// Resource accounting from the run's cgroup, when it had one.
    public var resources: ResourceUsage?
    /// The host uid the command ran as when it had one of its own (a root invoker,
    /// `process.host_uid = "own"`); nil: the invoker's.
    public var hostUID: UInt32? = nil
    /// `[binary]`: the executable that was checked (and ran, unless refused), its
    /// SHA-256 and a script's interpreter; nil without `[binary]` checks.
    public var binary: CheckedBinary? = nil
    /// Every call the seccomp filter handed to the supervisor, exact, including those
    /// past the caps below: the sum of the entries' `count` plus `violationsDropped`.
    public var violationsTotal: Int = 0
    /// Calls of syscalls that have no entry because `violations` already held
    /// `Violation.maxEntries` syscalls: counted here and in `violationsTotal` only.
    public var violationsDropped: Int = 0
    /// Entries the plan reports (`.git`) that the run created, moved into place, or
    /// whose config, hooks, submodule or worktree configs it changed, and directories
    /// git would take for a git directory whose HEAD, config, commondir, objects or
    /// refs the run made or changed, beneath a writable directory: git on the host
    /// would read that config and run those hooks (`CreatedEntryScan`).
    public var createdEntries: [String] = []
    /// How many were found (`createdEntries` lists at most 256).
    public var createdEntriesTotal: Int = 0
    /// The walk stopped at its bound (50 000 directories, depth 64), met another
    /// filesystem or could not examine an entry: more may exist. A caller must not
    /// take an empty `createdEntries` as "none" then.
    public var createdEntriesIncomplete: Bool = false
    /// Runs with a DNS stub (allow rules naming hosts): the questions it refused, one
    /// entry per (name, type, reason), most frequent first, at most 256.
    public var dnsDenied: [DNSDenial]? = nil
    /// Refusals past those 256 entries, counted only here.
    public var dnsDeniedDropped: UInt64? = nil
    /// Runs whose host rules open TCP ports: the flows the server name check reset,
    /// one entry per (daddr, dport, name, reason), at most 256.
    public var sniDenied: [SNIDenial]? = nil
    /// Refusals past those 256 entries, counted only here.
    public var sniDeniedDropped: UInt64? = nil
    /// The plan's `isolation` (a policy that accepts nested isolation): the mode this
    /// run got, why, and — nested — each layer applied or not.
    public var isolation: IsolationPlan? = nil

    /// The result of a run refused before anything was created (bad policy, a plan
    /// this host cannot satisfy): exit 125 and the reason, so `--result` always has
    /// something to read.
    public static func refused(runId: String, policy: String, argv: [String], error: ExecError) -> RunResult {
        RunResult(runId: runId, policy: policy, planDigest: "", argv: argv, exitCode: error.exitCode, signal: nil,
                  timedOut: false, wallMs: 0, cpuUserMs: 0, cpuSystemMs: 0, error: Failure(error), notApplied: [],
                  fences: .none,
                  violations: [], egressDenied: [], resources: nil)
    }

    /// `error` in the result: `{kind, step, subject, errno, errnoName, message}`.
    /// Fields without a value (no subject, no errno) are left out of the JSON.
    ///
    ///     {"errno":2,"errnoName":"ENOENT","kind":"setup","message":"bind /data (ro): No such file or directory",
    ///      "step":"bind sources","subject":"/data"}
    public struct Failure: Codable, Sendable, Equatable {
        /// `policy`, `plan`, `setup`, `child`, `exec` or `violation` (``ExecError/Kind``).
        public var kind: ExecError.Kind
        /// The step that failed (a set-up step, the child's step name, `load`, `compile`).
        public var step: String
        /// What it failed on: a path, a cgroup file, a policy key, a syscall.
        public var subject: String?
        /// The errno number, and its C name (`ENOENT`).
        public var errno: Int32?
        public var errnoName: String?
        /// The text `sandbox exec` prints on stderr.
        public var message: String

        public init(_ e: ExecError) {
            kind = e.kind; step = e.step; subject = e.subject
            errno = e.errno?.rawValue; errnoName = e.errno?.name; message = e.message
        }
    }

    public struct Fences: Codable, Sendable, Equatable {
        /// Nothing applied: the run never reached clone3.
        public static let none = Fences(landlockABI: 0, seccompRules: 0, seccompInstructions: 0, seccompAction: nil,
                                        seccompCacheHit: nil, capabilitiesKept: [], noNewPrivs: false)

        public var landlockABI: Int
        public var seccompRules: Int
        public var seccompInstructions: Int
        public var seccompAction: String?
        public var seccompCacheHit: Bool?
        public var capabilitiesKept: [String]
        public var noNewPrivs: Bool
    }

    public struct Violation: Codable, Sendable, Equatable {
        public var kind: String        // "seccomp"; later "landlock" where the kernel reports it
        public var syscall: String?
        /// The arguments of the first call.
        public var args: [UInt64]?
        /// The arguments of each call, in order: the first `Violation.maxCalls`, while
        /// the run has recorded fewer than `Violation.maxRecordedCalls` in all.
        public var calls: [[UInt64]]
        /// Every call of this syscall, exact.
        public var count: Int
        public static let maxCalls = 32
        /// Distinct syscalls listed per run; calls of any other are only counted
        /// (`violationsDropped`). With the argument caps this bounds the entries at
        /// about 350 KB of JSON whatever the command does (each entry ≤ ~250 bytes
        /// plus its calls, each call ≤ ~130 bytes).
        public static let maxEntries = 256
        /// Argument lists (`calls`) recorded per run, across all entries.
        public static let maxRecordedCalls = 2048
    }

    /// One line of the denial account.
    ///
    ///     {"count":5,"detail":"EPERM","first":3,"hint":"the system call ptrace is not allowed by this policy (it fails with EPERM)",
    ///      "kind":"syscall","what":"ptrace"}
    public struct Denial: Codable, Sendable, Equatable {
        /// The fence that refused it (`syscall`, `socket-family`, `setuid-bit`,
        /// `signal`, `abstract-socket`, `filesystem`, `egress`).
        public var kind: DenialKind
        /// What was tried: a system call's name, a path, a destination `addr:port/proto`.
        public var what: String
        /// More about it: the errno it got, the missing Landlock right, the rule.
        public var detail: String?
        /// How many times, exact (unless `notApplied` says the account is incomplete).
        public var count: Int
        /// When the first one happened: ms after the supervisor started the run (the
        /// kernel's audit timestamp for logged denials, the notifier's receipt for
        /// notify mode); nil where the source has no time (the firewall's counters).
        public var first: UInt64?
        /// What a model can do about it, in one sentence.
        public var hint: String
    }

    /// `dnsDenied[]`: `{name, type, reason, count, hint}`.
    public struct DNSDenial: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var reason: DNSRefusal.Reason
        public var count: UInt64
        public var hint: String

        init(_ r: DNSRefusal) {
            name = r.name; type = r.type; reason = r.reason; count = r.count
            switch r.reason {
            case .notAllowed where !r.nameIsHostName:
                hint = "the name is not a valid host name (shown escaped, RFC 1035 \\DDD); answered NXDOMAIN, not asked upstream; no rule can allow it"
            case .notAllowed:
                hint = "\(r.name) is not an allowed name (answered NXDOMAIN, not asked upstream); to reach it add network.allow = [{ host = \"\(r.name)\", ports = [PORT] }]"
            case .recordType:
                hint = "\(r.type) records are not answered (only A and AAAA; HTTPS/SVCB would hide the server name); the client should fall back to A/AAAA"
            case .rateLimited:
                hint = "more than 100 questions a second (burst 200) went to the DNS stub; this one got SERVFAIL without being asked upstream — retry more slowly"
            case .busy:
                hint = "more questions were in flight at once than the DNS stub serves (32); this one got SERVFAIL — retry, or ask fewer at once"
            case .setFull:
                hint = "the host rule's address sets are full (\(NftRunTable.nameSetSize) addresses each), or the stub remembers its most (address, name) pairs (16384, e.g. many names of a wildcard); this answer got SERVFAIL and opened nothing — entries free as their TTLs expire"
            case .tooManyAddresses:
                hint = "the answer held more addresses than one answer may open (32); the rest were left out of the reply and not opened"
            case .tooManyConnections:
                hint = "more than 16 TCP connections to the DNS stub were open at once; this one was closed before a question was read — ask over UDP, or hold fewer connections open"
            case .deniedAddress:
                hint = "\(r.name) resolved to an address in network.deny_resolved (loopback, link-local/metadata, multicast, this host, the sandbox bridge, or a listed range); it was left out of the answer and not opened"
            }
        }
    }

    /// `sniDenied[]`: `{daddr, dport, name, reason, count, hint}`.
    public struct SNIDenial: Codable, Sendable, Equatable {
        public var daddr: String
        public var dport: UInt16
        public var name: String
        public var reason: ServerNameRefusal.Reason
        public var count: UInt64
        public var hint: String

        init(_ r: ServerNameRefusal) {
            daddr = r.daddr; dport = r.dport; name = r.name; reason = r.reason; count = r.count
            switch r.reason {
            case .notResolved:
                hint = "the connection to \(r.daddr):\(r.dport) named \(r.name), which did not resolve to that address in this run; connect by resolving \(r.name) itself (a shared address does not open other names)"
            case .notAllowed:
                hint = "the connection to \(r.daddr):\(r.dport) named \(r.name), which no rule allows on port \(r.dport); to reach it add network.allow = [{ host = \"\(r.name)\", ports = [\(r.dport)] }]"
            case .noName:
                hint = "the connection to \(r.daddr):\(r.dport) sent neither a TLS ClientHello with a server name nor an HTTP/1 request with one Host in its first segment; ports of host rules carry only those (open other protocols with a cidr rule)"
            case .ech:
                hint = "the connection to \(r.daddr):\(r.dport) used encrypted_client_hello, which hides the server name; disable ECH in the client"
            }
        }
    }

    /// `egressDenied[]`: `{daddr, dport, proto, packets, reason}`, one per destination
    /// and reason (an allowed destination the cap refused is not "not allowed").
    public struct EgressDenial: Codable, Sendable, Equatable {
        public var daddr: String
        public var dport: UInt16
        public var proto: String
        public var packets: UInt64
        public var reason: EgressRefusal
    }

    public enum CPUSource: String, Codable, Sendable {
        case cgroup, rusage
    }

    /// What the run's cgroup says (its CPU time is `cpuUserMs`/`cpuSystemMs`).
    public struct ResourceUsage: Codable, Sendable, Equatable {
        public var oomKilled: Bool
        public var pidsLimitHit: Bool
        public var memoryPeakBytes: UInt64?
        /// Time the run was held back by its CPU quota.
        public var throttledUs: UInt64?
    }
}
