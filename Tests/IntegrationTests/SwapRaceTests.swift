import Foundation
import Testing

/// Issue 11, acceptance 1: the bind-source swap race. Run A, a sandboxed command whose
/// rw `{cwd}` is `proj`, swaps `proj/sub` (a directory) with `proj/lnk` (a symlink to
/// `outside`, a directory elsewhere) with `renameat2(RENAME_EXCHANGE)` as fast as it
/// can. Run B is started again and again from one long-lived shell whose cwd was set
/// to `proj/sub` before the swapping began, so the invoker holds the directory by
/// reference (as a harness that keeps its cwd by fd) while its name keeps changing.
/// A sandbox that mounts `{cwd}` by path can be sent to `outside`; one that opens it
/// from its own cwd fd cannot.
///
/// The control runs the same race with bwrap as B (it resolves `--bind` sources by
/// path, following symlinks): it must escape at least once, else the race is not
/// working and the test says so.
///
/// Needs root, python3 (for A) and, for the control, bubblewrap; a missing
/// requirement fails unless SANDBOX_TESTS_ALLOW_SKIP=1.
@Suite(.serialized) struct SwapRaceTests {
    static let runs = 200

    /// 200 runs of `sandbox exec --policy agent -- sh -c "touch PWNED-$i; stat -c %i ."`
    /// against the swapping run A write nothing into `outside`, and every run that
    /// started saw `proj/sub`'s inode as its working directory. Runs may be refused
    /// with 125 (the path changed under the supervisor) but must never be redirected.
    /// The same holds when B mounts its cwd elsewhere, `rw = [{ src = "{cwd}", dst =
    /// "/workspace" }]` (issue 18): the source is what is checked, wherever it goes.
    @Test(arguments: ["agent", "workspace"])
    func swappingRunCannotRedirectAnotherRunsCwd(_ variant: String) throws {
        guard Self.ready() else { return }
        let race = try SwapRace()
        defer { race.remove() }
        var policy = "agent"
        if variant == "workspace" {
            policy = Harness.policy("""
                extends = ["agent"]
                [filesystem]
                rw = [{ src = "{cwd}", dst = "/workspace" }]
                [process]
                workdir = "/workspace"
                """, in: race.proj, name: "workspace.toml")
        }

        // The inner `$(…)` is expanded by the sandboxed sh, `$i` by the driving shell.
        let loop = """
            for i in $(seq "$RUNS"); do
              "$SANDBOX" exec --policy '\(policy)' -- sh -c "touch PWNED-$i; echo ino \\$(stat -c %i .)"
              echo "rc $i $?"
            done
            """
        let (b, a) = try race.run(loop)

        let statuses = Self.statuses(b.stdout)
        let inodes = b.stdout.split(separator: "\n").filter { $0.hasPrefix("ino ") }.map { UInt64($0.dropFirst(4)) ?? 0 }
        let ok = statuses.filter { $0.value == 0 }.map(\.key).sorted()
        let refused = statuses.filter { $0.value == 125 }.count
        print("swap race (\(variant)): A made \(a.swaps) swaps; of \(statuses.count) runs of B, \(ok.count) ran, \(refused) were refused with 125")

        #expect(a.swaps > 0, "run A never swapped, the race proves nothing: \(a.output.stdout) \(a.output.stderr)")
        #expect(b.status == 0, "driving shell: status \(b.status), stdout: \(b.stdout.suffix(2000)) stderr: \(b.stderr.suffix(2000))")
        #expect(statuses.count == Self.runs, "\(statuses.count) of \(Self.runs) runs of B reported a status; stderr: \(b.stderr.suffix(2000))")

        let escaped = race.outsideEntries()
        #expect(escaped.count == 0, "run B wrote outside its cwd (into \(race.outside)): \(escaped.sorted())")

        let others = statuses.filter { $0.value != 0 && $0.value != 125 }
        #expect(others.isEmpty, "runs of B ended with neither 0 nor 125 (run: status): \(others.sorted { $0.key < $1.key }); stderr: \(b.stderr.suffix(2000))")
        #expect(!ok.isEmpty, "no run of B ran at all (every one refused), so no mount was checked; stderr: \(b.stderr.suffix(2000))")

        #expect(inodes.count == ok.count, "\(inodes.count) inodes printed for \(ok.count) runs that exited 0: \(b.stdout.suffix(2000))")
        let wrong = inodes.filter { $0 != race.subInode }
        #expect(wrong.count == 0, "the working directory inside B was not proj/sub (inode \(race.subInode)) in \(wrong.count) runs; inodes seen: \(Set(wrong).sorted())")

        // Every run that exited 0 left its file in the real directory, and no other run did.
        let written = Set(race.entriesOfSub().compactMap { $0.hasPrefix("PWNED-") ? Int($0.dropFirst(6)) : nil })
        let mismatched = written.symmetricDifference(ok).sorted()
        #expect(mismatched.count == 0, "runs whose PWNED file is missing from proj/sub although they exited 0, or there although they did not: \(mismatched)")
    }

    /// Control: the same race with `bwrap --bind "$PWD" "$PWD" … --chdir "$PWD" touch
    /// PWNED-$i` as B. bwrap resolves the bind source by path when it mounts, so a
    /// swap at the wrong moment binds `outside` instead: at least one PWNED file must
    /// appear there within 200 runs.
    @Test func controlBwrapFollowsTheSwappedPath() throws {
        guard Self.ready() else { return }
        guard Harness.require(FenceAttackTests.which("bwrap") != nil, "bubblewrap (bwrap) for the control run") else { return }
        let race = try SwapRace()
        defer { race.remove() }

        // $PWD is proj/sub's path, fixed when the shell started; the loop stops at the
        // first escape.
        let loop = #"""
            for i in $(seq "$RUNS"); do
              bwrap --bind "$PWD" "$PWD" --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
                --symlink usr/lib64 /lib64 --proc /proc --dev /dev --chdir "$PWD" touch "PWNED-$i"
              echo "rc $i $?"
              if [ -n "$(ls -A "$OUTSIDE")" ]; then echo "escaped $i"; break; fi
            done
            """#
        let (b, a) = try race.run(loop)
        let statuses = Self.statuses(b.stdout)
        let escaped = race.outsideEntries()
        print("swap race control: A made \(a.swaps) swaps; bwrap ran \(statuses.count) times, \(statuses.filter { $0.value == 0 }.count) exited 0; outside holds \(escaped.sorted())")

        #expect(a.swaps > 0, "run A never swapped: \(a.output.stdout) \(a.output.stderr)")
        #expect(b.status == 0, "driving shell: status \(b.status), stderr: \(b.stderr.suffix(2000))")
        #expect(statuses.values.contains(0), "bwrap never ran successfully, so the control shows nothing: \(b.stderr.suffix(2000))")
        #expect(escaped.contains { $0.hasPrefix("PWNED-") },
                "the race setup is not working: bwrap never wrote into outside in \(statuses.count) runs while A swapped \(a.swaps) times, so the sandbox's result proves nothing")
    }

    // MARK: - Helpers

    static func ready() -> Bool {
        Harness.require(Harness.isRoot, "root")
            && Harness.require(FenceAttackTests.python3 != nil, "python3 (run A swaps with ctypes)")
    }

    /// `rc I STATUS` lines → [I: STATUS].
    static func statuses(_ stdout: String) -> [Int: Int32] {
        var r: [Int: Int32] = [:]
        for line in stdout.split(separator: "\n") where line.hasPrefix("rc ") {
            let f = line.split(separator: " ")
            if f.count == 3, let i = Int(f[1]), let s = Int32(f[2]) { r[i] = s }
        }
        return r
    }
}

/// `proj/sub`, `proj/lnk → outside`, `outside`; both top directories are fresh temp
/// dirs removed by `remove()`.
struct SwapRace {
    let proj: String
    let outside: String
    let subInode: UInt64

    init() throws {
        let proj = Harness.tempDir(), outside = Harness.tempDir()
        var st = stat()
        do {
            try FileManager.default.createDirectory(atPath: "\(proj)/sub", withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(atPath: "\(proj)/lnk", withDestinationPath: outside)
            try Self.swapperScript.write(toFile: "\(proj)/swap.py", atomically: true, encoding: .utf8)
            guard lstat("\(proj)/sub", &st) == 0 else { throw POSIXError(.ENOENT) }
        } catch {
            unlink("\(proj)/lnk")
            try? FileManager.default.removeItem(atPath: proj)
            try? FileManager.default.removeItem(atPath: outside)
            throw error
        }
        self.proj = proj
        self.outside = outside
        subInode = UInt64(st.st_ino)
    }

    /// Run A: waits for `go`, swaps `sub` and `lnk` until `STOP` appears or 60 s pass,
    /// creating `swapping` after its first 100 swaps; leaves them as it found them
    /// (an even number of swaps) and prints `swaps N errno E`.
    static let swapperScript = """
        import ctypes, os, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        swap = libc.renameat2
        AT_FDCWD, RENAME_EXCHANGE = -100, 2
        t = time.monotonic() + 20
        while not os.path.exists("go"):
            if time.monotonic() > t:
                print("swaps 0 errno none (no go)"); sys.exit(3)
            time.sleep(0.005)
        end = time.monotonic() + 60
        n = i = 0
        err = None
        while True:
            i += 1
            if swap(AT_FDCWD, b"sub", AT_FDCWD, b"lnk", RENAME_EXCHANGE) == 0:
                n += 1
                if n == 100:
                    open("swapping", "w").close()
            elif err is None:
                err = ctypes.get_errno()
            if i % 256 == 0:
                if os.path.exists("STOP") or time.monotonic() > end:
                    break
                if n == 0 and i >= 10000:
                    break
        for _ in range(100):
            if n % 2 == 0:
                break
            if swap(AT_FDCWD, b"sub", AT_FDCWD, b"lnk", RENAME_EXCHANGE) == 0:
                n += 1
        print("swaps", n, "errno", err, flush=True)
        """

    struct Swapper {
        var swaps: Int
        var output: Harness.Output
    }

    /// Starts the driving shell (cwd proj/sub, `$PWD` its path) — it creates `go`, so A
    /// starts swapping only once the shell's cwd is held — then A under agent in
    /// `proj`; the shell waits for `swapping` and runs `loop` (with `$SANDBOX`,
    /// `$RUNS`, `$OUTSIDE` set). Returns the shell's output and A's.
    func run(_ loop: String) throws -> (Harness.Output, Swapper) {
        let swapper = try BackgroundCommand.sandbox(policy: "agent", ["python3", "swap.py"], cwd: proj)
        var finished = false
        defer {
            if !finished {
                _ = FileManager.default.createFile(atPath: "\(proj)/STOP", contents: nil)
                _ = swapper.finish(timeout: 10)
            }
        }

        let script = """
            touch "$PROJ/go"
            n=0
            while [ ! -e "$PROJ/swapping" ]; do
              n=$((n + 1))
              if [ $n -gt 1500 ]; then echo "run A never started swapping" >&2; exit 3; fi
              sleep 0.01
            done
            \(loop)
            touch "$PROJ/STOP"
            """
        let b = try Harness.run("/bin/sh", ["-c", script], cwd: "\(proj)/sub",
                                env: ["PWD": "\(proj)/sub", "PROJ": proj, "OUTSIDE": outside, "SANDBOX": Harness.binary,
                                      "RUNS": "\(SwapRaceTests.runs)"],
                                timeout: 120)
        _ = FileManager.default.createFile(atPath: "\(proj)/STOP", contents: nil)
        let a = swapper.finish(timeout: 10)
        finished = true
        let swaps = a.stdout.split(separator: "\n").compactMap { line -> Int? in
            let f = line.split(separator: " ")
            return f.count >= 2 && f[0] == "swaps" ? Int(f[1]) : nil
        }.last ?? 0
        return (b, Swapper(swaps: swaps, output: a))
    }

    func outsideEntries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? []
    }

    /// The entries of the real directory (it is `proj/sub` again once A stopped after
    /// an even number of swaps; found by inode either way).
    func entriesOfSub() -> [String] {
        for name in ["sub", "lnk"] {
            var st = stat()
            if lstat("\(proj)/\(name)", &st) == 0, UInt64(st.st_ino) == subInode {
                return (try? FileManager.default.contentsOfDirectory(atPath: "\(proj)/\(name)")) ?? []
            }
        }
        return []
    }

    func remove() {
        // Drop the symlink first, whatever its name is now, so nothing is removed through it.
        for name in ["sub", "lnk"] {
            var st = stat()
            if lstat("\(proj)/\(name)", &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK { unlink("\(proj)/\(name)") }
        }
        try? FileManager.default.removeItem(atPath: proj)
        try? FileManager.default.removeItem(atPath: outside)
    }
}

/// A command started in the background, its stdout and stderr going to files (no
/// pipe can fill up). `finish` waits for it (SIGTERM, then SIGKILL, to this process
/// only, after `timeout`), collects its output and result, and removes the files.
final class BackgroundCommand {
    let process = Process()
    let dir: String
    let resultFile: String?

    init(_ exe: String, _ args: [String], cwd: String, env: [String: String] = [:], resultFile: String? = nil, dir: String) throws {
        self.dir = dir
        self.resultFile = resultFile
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        _ = FileManager.default.createFile(atPath: "\(dir)/stdout", contents: nil)
        _ = FileManager.default.createFile(atPath: "\(dir)/stderr", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: "\(dir)/stdout")
        process.standardError = FileHandle(forWritingAtPath: "\(dir)/stderr")
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
    }

    /// `sandbox exec --policy POLICY --result … -- ARGV` in `cwd`.
    static func sandbox(policy: String, _ argv: [String], cwd: String) throws -> BackgroundCommand {
        let dir = Harness.tempDir()
        do {
            return try BackgroundCommand(Harness.binary, ["exec", "--policy", policy, "--result", "\(dir)/result.json", "--"] + argv,
                                         cwd: cwd, resultFile: "\(dir)/result.json", dir: dir)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    var isRunning: Bool { process.isRunning }

    /// Waits up to `timeout` for `path` to exist while the command runs.
    func waitFor(_ path: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            if !process.isRunning { return FileManager.default.fileExists(atPath: path) }
            usleep(10_000)
        }
        return false
    }

    func finish(timeout: TimeInterval) -> Harness.Output {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func wait(_ seconds: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            return !process.isRunning
        }
        if !wait(timeout) {
            kill(process.processIdentifier, SIGTERM) // our own child, not yet reaped
            if !wait(5) { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let read = { (name: String) in String(decoding: FileManager.default.contents(atPath: "\(self.dir)/\(name)") ?? Data(), as: UTF8.self) }
        var out = Harness.Output(status: process.terminationStatus, stdout: read("stdout"), stderr: read("stderr"))
        if let resultFile, let data = FileManager.default.contents(atPath: resultFile), !data.isEmpty {
            out.result = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        return out
    }
}
