import Foundation
import Testing

/// Issue 12, acceptance 3: the hostile-policy corpus is refused by `sandbox check` and
/// `sandbox exec` with 125, a short stderr and a small peak RSS (`ru_maxrss` of the
/// sandbox process, as `/usr/bin/time` reports it). Before the bounds: the 20 000-part key took 60–90 s and
/// 0.5–2 GB, the 40 000-part one crashed the TOML parser, 10 MB of unknown keys took
/// 90 s and wrote 80 MB to stderr, a 100-deep extends chain and a million-entry array
/// were accepted. The time is printed, not asserted (Tests/SandboxPolicyTests/
/// HostilePolicyTests.swift asserts which bound refuses each file).
@Suite struct HostilePolicyCLITests {
    static let maxRSSKiB = 64 * 1024
    static let maxStderr = 16 * 1024

    /// Writes the corpus into `dir`; returns (name, policy path).
    static func corpus(in dir: String) throws -> [(String, String)] {
        func write(_ name: String, _ text: String) throws -> String {
            let path = dir + "/" + name
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            return path
        }
        var out: [(String, String)] = []
        out.append(("dotted key, 20 000 parts, 200 KB",
                    try write("dotted20k.toml", (0..<20_000).map { String(format: "part%05d", $0) }.joined(separator: ".") + " = 1\n")))
        out.append(("dotted key, 40 000 parts, 400 KB",
                    try write("dotted40k.toml", (0..<40_000).map { String(format: "part%05d", $0) }.joined(separator: ".") + " = 1\n")))
        out.append(("dotted key, 20 000 one-letter parts, 40 KB",
                    try write("compact20k.toml", Array(repeating: "a", count: 20_000).joined(separator: ".") + " = 1\n")))
        var unknown = ""
        unknown.reserveCapacity(10 << 20 + 64)
        var i = 0
        while unknown.utf8.count < 10 << 20 { unknown += "unknown_key_\(i) = \"value\"\n"; i += 1 }
        out.append(("10 MB of unknown keys", try write("unknown10m.toml", unknown)))
        out.append(("4 000 unknown keys (diagnostics capped)",
                    try write("unknown4k.toml", (0..<4000).map { "unknown_\($0) = 1\n" }.joined())))
        out.append(("inline tables 10 000 deep",
                    try write("inline10k.toml", "a = " + String(repeating: "{b = ", count: 10_000) + "1" + String(repeating: "}", count: 10_000) + "\n")))
        out.append(("[[a.a.…]] of 10 000 parts",
                    try write("aot10k.toml", "[[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]]\n")))
        out.append(("array of 1 000 000 entries",
                    try write("array1m.toml", "[filesystem]\nro = [" + Array(repeating: "\"/x\"", count: 1_000_000).joined(separator: ",") + "]\n")))
        for n in 0..<100 { _ = try write("chain\(n).toml", "extends = [\"./chain\(n + 1).toml\"]\n") }
        _ = try write("chain100.toml", "version = 1\n")
        out.append(("extends chain 100 deep", dir + "/chain0.toml"))
        #expect(mkfifo(dir + "/fifo.toml", 0o600) == 0)
        out.append(("extends a FIFO", try write("extends-fifo.toml", "extends = [\"./fifo.toml\"]\n")))
        out.append(("extends /dev/zero", try write("extends-zero.toml", "extends = [\"/dev/zero\"]\n")))
        out.append(("seccomp.profile /dev/zero", try write("profile-zero.toml", "[seccomp]\nprofile = \"/dev/zero\"\n")))
        var json = Data("[".utf8)
        let chunk = Data(String(repeating: "1,", count: 4096).utf8)
        while json.count < 50 << 20 { json.append(chunk) }
        json.append(Data("1]".utf8))
        try json.write(to: URL(fileURLWithPath: dir + "/big.json"))
        out.append(("seccomp profile: a 50 MB JSON array", try write("profile-big.toml", "[seccomp]\nprofile = \"./big.json\"\n")))
        return out
    }

    struct Measured {
        var status: Int32
        var stderr: Data
        var maxRSSKiB: Int
        var seconds: Double
    }

    /// Runs the binary with `args` under `/usr/bin/time`, stdout to /dev/null, stderr to
    /// a file. The peak RSS is time's `%M` (the child's `ru_maxrss`): it is not read
    /// from our own wait4, because a child spawned from this (large) test process
    /// inherits its high-water mark at exec (the kernel folds the old mm's peak into
    /// `ru_maxrss`, and posix_spawn shares the parent's mm until exec); the small
    /// `time` process forks the sandbox from its own small mm.
    static func measure(_ args: [String], timeout: TimeInterval = 60) throws -> Measured {
        let errPath = NSTemporaryDirectory() + "sbx-hostile-stderr-\(UUID().uuidString)"
        let timePath = errPath + ".time"
        defer { unlink(errPath); unlink(timePath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))   // its own group: a timeout kills both
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = (["/usr/bin/time", "-f", "%M", "-o", timePath, Harness.binary] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = posix_spawn(&pid, "/usr/bin/time", &actions, &attributes, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        var status: Int32 = 0
        let deadline = start.addingTimeInterval(timeout)
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if Date() > deadline { kill(-pid, SIGKILL) }   // the group of our own child, not yet reaped
            usleep(2_000)
        }
        let seconds = Date().timeIntervalSince(start)
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let stderr = FileManager.default.contents(atPath: errPath) ?? Data()
        // time writes "Command exited with non-zero status N" before the figure.
        let report = (try? String(contentsOfFile: timePath, encoding: .utf8)) ?? ""
        let rss = report.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? Int.max
        return Measured(status: code, stderr: stderr, maxRSSKiB: rss, seconds: seconds)
    }

    @Test func theCorpusIsRefusedWith125QuietlyAndInLittleMemory() throws {
        guard Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/time"),
                              "/usr/bin/time (GNU time, Debian package \"time\") to measure the peak RSS") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = try Self.corpus(in: dir)
        for (what, path) in corpus {
            for args in [["check", path], ["exec", "--policy", path, "--", "/bin/true"]] {
                let m = try Self.measure(args)
                let label = "\(args[0]) \(what)"
                print("hostile policy: \(label): exit \(m.status), \(String(format: "%.3f", m.seconds)) s, \(m.maxRSSKiB) KiB peak RSS, \(m.stderr.count) bytes of stderr")
                #expect(m.status == 125, "\(label): exit \(m.status)")
                #expect(m.stderr.count < Self.maxStderr, "\(label): \(m.stderr.count) bytes of stderr")
                #expect(m.maxRSSKiB < Self.maxRSSKiB, "\(label): peak RSS \(m.maxRSSKiB) KiB")
                // Which file and what: the first line names a corpus file.
                let first = String(decoding: m.stderr.prefix(4096), as: UTF8.self)
                #expect(first.contains(dir), "\(label): \(first)")
            }
        }
    }
}
