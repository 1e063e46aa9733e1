import Foundation
import PolicyFuzz
import SandboxPolicy

/// Runs batches of cases in worker processes and keeps the score. A worker that dies
/// of a signal crashed on the case it had started; one silent for longer than the
/// bound hung on it (it is killed, by its pid). Either way the case's files are kept
/// under `out` and the run goes on with the next case.
final class Supervisor {
    let seed: UInt64
    let generator: PolicyGenerator
    let data: DataDirectory
    let out: String
    let bound: Double

    private(set) var inputs = 0
    private(set) var crashes = 0
    private(set) var hangs = 0
    private(set) var cliRuns = 0
    private var results: [String: Int] = [:]
    private var strategies: [String: Int] = [:]
    /// Distinct findings (case directory paths taken out), with the first case of each.
    private var findings: [String: (index: Int, count: Int)] = [:]
    /// Seconds the workers spent generating, writing and running cases.
    private var spent = (generate: 0.0, write: 0.0, run: 0.0)
    private var slowest: [(index: Int, micros: Int)] = []
    var findingCount: Int { findings.values.reduce(0) { $0 + $1.count } }

    init(seed: UInt64, generator: PolicyGenerator, data: DataDirectory, out: String, bound: Double) {
        self.seed = seed; self.generator = generator; self.data = data; self.out = out; self.bound = bound
    }

    /// Runs cases `from ..< from + count` (stopping early after `deadline` seconds);
    /// returns the next case to run.
    func runWorker(executable: String, from: Int, count: Int, cliEvery: Int, sandbox: String?, deadline: Double) throws -> Int {
        let work = out + "/worker"
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw FuzzError("pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        let args = [executable, "worker", "--seed", "\(seed)", "--from", "\(from)", "--count", "\(count)",
                    "--work", work, "--cli-every", "\(cliEvery)"] + (sandbox.map { ["--sandbox", $0] } ?? [])
        let argv = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); throw FuzzError("posix_spawn: \(String(cString: strerror(rc)))") }

        let stopAt = DispatchTime.now().uptimeNanoseconds + UInt64(min(max(0, deadline), 1e9) * 1e9)
        var started: Int? = nil
        var next = from
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var lastLine = DispatchTime.now().uptimeNanoseconds
        var stopped = false
        loop: while true {
            var pfd = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 200)
            let now = DispatchTime.now().uptimeNanoseconds
            if ready > 0 {
                let n = read(fds[0], &buffer, buffer.count)
                if n <= 0 { break loop }
                pending += buffer[0..<n]
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<nl], as: UTF8.self)
                    pending.removeSubrange(...nl)
                    lastLine = now
                    handle(line, started: &started, next: &next)
                }
            }
            if let s = started, now - lastLine > UInt64(bound * 1e9) {
                kill(pid, SIGKILL)
                hangs += 1
                inputs += 1
                keep(kind: "hang", index: s, note: "no progress for \(bound) s")
                next = s + 1
                stopped = true
                break loop
            }
            if now > stopAt {
                // Time is up: stop between cases.
                kill(pid, SIGKILL)
                stopped = true
                break loop
            }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let sig = status & 0x7F
        if !stopped, let s = started {
            // The worker ended during a case: a crash (a signal, or an exit from a trap).
            crashes += 1
            inputs += 1
            keep(kind: "crash", index: s, note: sig != 0 ? "signal \(sig)" : "exit \((status >> 8) & 0xFF)")
            next = s + 1
        } else if !stopped && (sig != 0 || (status >> 8) & 0xFF != 0) {
            throw FuzzError("worker failed outside a case: status \(status)")
        }
        return next
    }

    private func handle(_ line: String, started: inout Int?, next: inout Int) {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let i = Int(parts[1]) else { return }
        switch parts[0] {
        case "S":
            started = i
        case "D":
            started = nil
            next = i + 1
            inputs += 1
            if parts.count >= 4 {
                let rest = parts[3].split(separator: " ")
                results[parts[2], default: 0] += 1
                if let micros = Int(rest.first ?? "") {
                    slowest.append((i, micros))
                    if slowest.count > 20 { slowest.sort { $0.micros > $1.micros }; slowest.removeLast(slowest.count - 5) }
                }
                if rest.count > 1 { strategies[String(rest[1]), default: 0] += 1 }
            }
        case "C":
            cliRuns += 1
        case "T":
            let t = parts.dropFirst(2).joined(separator: " ").split(separator: " ").compactMap { Double($0) }
            if t.count == 3 { spent.generate += t[0]; spent.write += t[1]; spent.run += t[2] }
        case "F":
            let text = parts.count >= 4 ? parts[2] + " " + parts[3] : line
            let key = text.replacingOccurrences(of: out, with: "OUT")
            let first = findings[key] == nil
            findings[key, default: (i, 0)].count += 1
            if first {
                say("FINDING case \(i): \(key.prefix(600))")
                keep(kind: "finding", index: i, note: key)
            }
        default:
            break
        }
    }

    /// Writes the case's files to `out/<kind>-<seed>-<index>` with a note.
    private func keep(kind: String, index: Int, note: String) {
        let dir = "\(out)/\(kind)-\(seed)-\(index)"
        let driver = FuzzDriver(workDir: dir, data: data)
        let c = generator.generate(seed: seed, index: index)
        try? driver.write(c)
        let text = "\(kind): \(note)\nstrategy: \(c.strategy)\nreplay: policy-fuzz replay --seed \(seed) --case \(index)\n"
        FileManager.default.createFile(atPath: dir + "/NOTE", contents: Data(text.utf8))
        if kind != "finding" { say("\(kind.uppercased()) case \(index): \(note); files in \(dir)") }
    }

    func report(elapsed: Double) {
        let rate = Double(inputs) / max(elapsed, 0.001)
        say("results: " + results.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        say("strategies: " + strategies.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        let slow = slowest.sorted { $0.micros > $1.micros }.prefix(3).map { "case \($0.index) \(String(format: "%.3f", Double($0.micros) / 1e6)) s" }
        say(String(format: "time in workers: generating %.1f s, writing %.1f s, loading and planning %.1f s",
                   spent.generate, spent.write, spent.run))
        say("slowest: " + slow.joined(separator: ", "))
        for (k, v) in findings.sorted(by: { $0.value.index < $1.value.index }) {
            say("finding ×\(v.count) (first: case \(v.index)): \(k.prefix(600))")
        }
        say(String(format: "policy fuzz: seed %llu: %d inputs in %.0f s (%.0f/s), %d through the CLI; crashes %d, hangs %d, findings %d",
                   seed, inputs, elapsed, rate, cliRuns, crashes, hangs, findingCount))
    }
}
