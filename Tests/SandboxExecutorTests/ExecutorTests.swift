import Foundation
import Glibc
@testable import SandboxExecutor
import SandboxKernel
import Testing

/// The executor's decisions that need no kernel object and no root: how a failure
/// reads and encodes, how an exit status is decoded, the order teardown undoes
/// things in, and that a descriptor has one owner.
struct ExecErrorTests {
    @Test func errnoHasItsCNameAndText() {
        #expect(Errno(ENOENT).name == "ENOENT")
        #expect(Errno(ENOENT).message == "No such file or directory")
        #expect(Errno(EINVAL).name == "EINVAL")
        #expect(Errno(100_000).name == "errno 100000")   // glibc has no name for it
    }

    @Test func kernelErrorPrintsOperationSubjectErrnoAndDetail() {
        #expect(KernelError(operation: "open", subject: "/run/sandbox/x/lock", errno: EACCES).description
                == "open /run/sandbox/x/lock: Permission denied")
        #expect(KernelError(operation: "netlink RTM_NEWLINK", subject: "sbx1", errno: EEXIST, detail: "Link already exists").description
                == "netlink RTM_NEWLINK sbx1: File exists (Link already exists)")
        // No errno: the detail says why.
        #expect(KernelError(operation: "nft load ruleset", subject: "inet sandbox", detail: "Error: syntax error").description
                == "nft load ruleset inet sandbox: Error: syntax error")
        // No subject: no dangling space.
        #expect(KernelError(operation: "pipe2", subject: "", errno: EMFILE).description == "pipe2: Too many open files")
        // An empty detail is no detail.
        #expect(KernelError(operation: "write", subject: "/x", errno: EIO, detail: "").detail == nil)
    }

    @Test func setupErrorCarriesStepSubjectAndErrno() {
        let kernel = KernelError(operation: "landlock_add_rule", subject: "/srv/data", errno: EBADF)
        let e = ExecError(.landlock, kernel)
        #expect(e.kind == .setup && e.step == "landlock" && e.subject == "/srv/data" && e.errno == Errno(EBADF))
        #expect(e.message == "landlock: landlock_add_rule /srv/data: Bad file descriptor")
        #expect(e.description == e.message && e.exitCode == 125)
        // Label "" keeps the kernel error's own text; an explicit subject wins.
        let bare = ExecError(.supervise, kernel, label: "", subject: "pidfd")
        #expect(bare.message == "landlock_add_rule /srv/data: Bad file descriptor" && bare.subject == "pidfd")
        // A failure that is not a kernel error has no errno.
        struct Other: Error, CustomStringConvertible { var description: String { "odd" } }
        let other = ExecError(.network, Other())
        #expect(other.errno == nil && other.subject == nil && other.message == "network: odd")
    }

    @Test func resultErrorEncodesAsAnObject() throws {
        let e = ExecError(kind: .setup, step: "bind sources", subject: "/data", errno: Errno(ENOENT),
                          message: "bind /data -> /data (ro): No such file or directory")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RunResult.Failure(e))) as? [String: Any]
        #expect(json?["kind"] as? String == "setup")
        #expect(json?["step"] as? String == "bind sources")
        #expect(json?["subject"] as? String == "/data")
        #expect(json?["errno"] as? Int == Int(ENOENT) && json?["errnoName"] as? String == "ENOENT")
        #expect(json?["message"] as? String == e.message)
        // No subject or errno: the keys are left out, not null.
        let plan = ExecError(kind: .plan, step: "compile", message: "policy p: x")
        let bare = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RunResult.Failure(plan))) as? [String: Any]
        #expect(bare.map { Set($0.keys) } == ["kind", "step", "message"])
        // And back.
        let decoded = try JSONDecoder().decode(RunResult.Failure.self, from: JSONEncoder().encode(RunResult.Failure(e)))
        #expect(decoded == RunResult.Failure(e))
    }

    @Test func refusedResultTakesTheErrorsExitCode() {
        let r = RunResult.refused(runId: "r", policy: "p", argv: ["x"],
                                  error: ExecError(kind: .policy, step: "load", subject: "p.toml", message: "invalid policy"))
        #expect(r.exitCode == 125 && r.error?.kind == .policy && r.error?.subject == "p.toml")
    }
}

struct ExitStatusTests {
    /// A wait status as the init writes it on the status pipe (in its report).
    static func payload(_ ws: Int32) -> ReaperReport? { ReaperReport(ReaperReport(waitStatus: ws).bytes) }

    @Test func payloadExitCode() {
        let r = Executor.exitStatus(payload: Self.payload(3 << 8), initExited: true, initStatus: 0)
        #expect(r.code == 3 && r.signal == nil)
    }

    @Test func payloadKilledBySignal() {
        let r = Executor.exitStatus(payload: Self.payload(SIGKILL), initExited: true, initStatus: 0)
        #expect(r.code == 128 + SIGKILL && r.signal == SIGKILL)
        // A core dump bit does not change the signal.
        let dumped = Executor.exitStatus(payload: Self.payload(SIGSEGV | 0x80), initExited: true, initStatus: 0)
        #expect(dumped.code == 128 + SIGSEGV && dumped.signal == SIGSEGV)
    }

    @Test func noPayloadFallsBackToTheInit() {
        // The init failed before forking the payload: 0 would claim success.
        #expect(Executor.exitStatus(payload: nil, initExited: true, initStatus: 0) == (125, nil))
        #expect(Executor.exitStatus(payload: nil, initExited: true, initStatus: 7) == (7, nil))
        // The init itself was killed (SIGKILL to the sandbox).
        let killed = Executor.exitStatus(payload: nil, initExited: false, initStatus: SIGKILL)
        #expect(killed.code == 137 && killed.signal == SIGKILL)
        // A short read is no payload.
        #expect(Executor.exitStatus(payload: ReaperReport([0, 0, 0, 0]), initExited: true, initStatus: 4) == (4, nil))
    }

    /// The report is read as the reaper's C struct lays it out: a short or long read
    /// is none, and every field comes back.
    @Test func theReapersReportRoundTrips() {
        let r = ReaperReport(waitStatus: 9 << 8, cpuUserUs: 1_234_567, cpuSystemUs: 89_012)
        #expect(ReaperReport.size == 24)
        #expect(ReaperReport(r.bytes) == r)
        #expect(ReaperReport(Array(r.bytes.dropLast())) == nil)
        #expect(ReaperReport(r.bytes + [0]) == nil)
    }
}

struct UndoStackTests {
    @Test func unwindsNewestFirstAndOnce() {
        var order: [Int] = []
        var undo = UndoStack()
        for i in 1...4 { undo.push { order.append(i) } }
        #expect(undo.count == 4)
        undo.unwind()
        #expect(order == [4, 3, 2, 1])
        undo.unwind()
        #expect(order == [4, 3, 2, 1], "a second unwind ran an undo again")
        #expect(undo.count == 0)
    }
}

struct OwnedFDTests {
    /// Whether `fd` is an open descriptor of this process.
    static func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) >= 0 }

    /// The open file `fd` names (device, inode), nil when it names none.
    static func file(_ fd: Int32) -> [UInt64]? {
        var st = stat()
        return fstat(fd, &st) == 0 ? [UInt64(st.st_dev), UInt64(st.st_ino)] : nil
    }

    /// Whether `fd` still names `file`. Tests run in parallel in one process: once a
    /// descriptor is closed another test may get its number at once, so "closed" is
    /// checked as "no longer names this pipe", not as "the number is free".
    static func stillNames(_ fd: Int32, _ file: [UInt64]?) -> Bool { file != nil && Self.file(fd) == file }

    @Test func closesExactlyOnce() throws {
        let (r, w) = try FD.pipe()
        let number = r.raw
        let pipe = Self.file(number)
        #expect(r.close() == true)
        #expect(!Self.stillNames(number, pipe))
        // Another descriptor may take the number now; a second close must not touch it.
        let (r2, w2) = try FD.pipe()
        defer { r2.close(); w2.close(); w.close() }
        #expect(r.close() == false && r.raw == -1)
        #expect(r2.raw == number ? Self.isOpen(number) : true, "the second close closed a newer descriptor")
        #expect(Self.isOpen(r2.raw))
    }

    @Test func handOffLeavesTheOwnerEmpty() throws {
        let (r, w) = try FD.pipe()
        defer { w.close() }
        let raw = r.release()
        let pipe = Self.file(raw)
        #expect(r.raw == -1 && !r.isOpen)
        #expect(r.close() == false)
        #expect(Self.stillNames(raw, pipe), "release closed the descriptor it handed off")
        let next = OwnedFD(raw)
        #expect(next.close() && !Self.stillNames(raw, pipe))
    }

    @Test func deinitClosesWhatIsStillOwned() throws {
        var number: Int32 = -1
        var pipe: [UInt64]?
        var keep: OwnedFD?
        do {
            let (r, w) = try FD.pipe()
            number = r.raw
            pipe = Self.file(number)
            keep = w
        }
        #expect(pipe != nil)
        #expect(!Self.stillNames(number, pipe), "an owner that went away left its descriptor open")
        keep?.close()
    }
}

struct RunRecordTests {
    @Test func handWrittenJSONDecodesToTheSameRecord() throws {
        var r = RunRecord(runId: "ab12", policy: "agent", planDigest: "", argv: ["sh", "-c", "echo \"hi\"\n\u{1}"],
                          started: 1_700_000_000, state: .starting)
        for step in 0..<3 {
            if step == 1 { r.hostUID = 1_878_982_700 }
            if step == 2 { r.cgroups = ["memory": "/sys/fs/cgroup/memory/x/sandbox-ab12", "pids": "/sys/fs/cgroup/pids/sandbox/ab12"]; r.state = .running }
            let decoded = try JSONDecoder().decode(RunRecord.self, from: Data(r.json.utf8))
            #expect(decoded == r, "\(r.json)")
        }
        // Canonical: keys sorted, absent values left out.
        let bare = RunRecord(runId: "x", policy: "p", planDigest: "d", argv: [], started: 1, state: .running)
        #expect(bare.json == #"{"argv":[],"planDigest":"d","policy":"p","runId":"x","started":1,"state":"running"}"# + "\n")
    }

    @Test func argvIsCutToItsBound() {
        let big = String(repeating: "x", count: 10_000)
        let r = RunRecord(runId: "x", policy: "p", planDigest: "", argv: ["sh", big, "tail"], started: 0, state: .starting)
        #expect(r.argv.count == 3 && r.argv[0] == "sh" && r.argv[1].hasSuffix("…") && r.argv[2] == "…+1")
        #expect(r.argv.joined().utf8.count <= RunRecord.argvBytes + 16)
        // A cut never splits a UTF-8 sequence.
        let wide = RunRecord(runId: "x", policy: "p", planDigest: "", argv: [String(repeating: "é", count: 3000)],
                             started: 0, state: .starting)
        #expect(wide.argv[0].hasSuffix("…") && wide.argv[0].utf8.count <= RunRecord.argvBytes + 3)
    }

    @Test func printableKeepsOneLine() {
        #expect(RunRecord.printable("a\nb\tc\rd") == #"a\nb\tc\rd"#)
        #expect(RunRecord.printable("\u{1b}[2J\u{7f}\u{85}") == #"\x1b[2J\x7f\x85"#)
        #expect(RunRecord.printable("x\u{2028}y\u{202e}z") == #"x\u{2028}y\u{202e}z"#)
        #expect(RunRecord.printable(#"back\slash"#) == #"back\\slash"#)
        #expect(RunRecord.printable("plain – ünïcode ok") == "plain – ünïcode ok")
        let r = RunRecord(runId: "x", policy: "p", planDigest: "", argv: ["sh", "-c", "a\nb"], started: 0, state: .running)
        #expect(r.commandLine == #"sh -c a\nb"#)
    }
}

struct CPUTimeTests {
    @Test func theCgroupAccountWinsWhenThereIsOne() {
        let stats = CgroupStats(cpuUserUs: 431_716, cpuSystemUs: 4_000)
        let t = Executor.cpuTime(cgroup: stats, rusage: (6, 0))
        #expect(t.userMs == 431 && t.systemMs == 4 && t.source == .cgroup)
    }

    @Test func rusageWithoutACgroup() {
        let t = Executor.cpuTime(cgroup: nil, rusage: (242, 7))
        #expect(t.userMs == 242 && t.systemMs == 7 && t.source == .rusage)
        // A cgroup without CPU accounting (no cpuacct) falls back too.
        let partial = Executor.cpuTime(cgroup: CgroupStats(cpuUserUs: 5), rusage: (1, 2))
        #expect(partial.source == .rusage && partial.userMs == 1)
        #expect(Executor.cpuTime(cgroup: nil, rusage: nil).source == nil)
    }
}

/// A sandbox built ahead is taken only on the host audit state its denial account was
/// set up for. The state a server asks as a request arrives stands for the state at
/// the take only if it was asked after the build read its own, and not long before
/// the take: a request held up on its way (a slow policy read) asks again (red team,
/// session 42: held 3 s, it took a sandbox set up for audit off with audit on).
struct AuditStateAskedAheadTests {
    @Test func askedAfterTheBuildAndFreshIsUsed() {
        #expect(Executor.mayUseAuditState(askedAtUs: 1_000, builtReadAtUs: 900, nowUs: 1_800))
    }

    @Test func askedBeforeTheBuildsOwnReadingIsNot() {
        #expect(!Executor.mayUseAuditState(askedAtUs: 900, builtReadAtUs: 900, nowUs: 1_000))
        #expect(!Executor.mayUseAuditState(askedAtUs: 800, builtReadAtUs: 900, nowUs: 1_000))
    }

    @Test func askedTooLongBeforeTheTakeIsNot() {
        let fresh = Executor.auditStateFreshUs
        #expect(Executor.mayUseAuditState(askedAtUs: 1_000, builtReadAtUs: 0, nowUs: 1_000 + fresh))
        #expect(!Executor.mayUseAuditState(askedAtUs: 1_000, builtReadAtUs: 0, nowUs: 1_001 + fresh))
        #expect(!Executor.mayUseAuditState(askedAtUs: 1_000, builtReadAtUs: 0, nowUs: 3_000_000))
    }
}
