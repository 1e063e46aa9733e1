import Foundation
@testable import SandboxPlan
import Testing

/// `GitIndirections.entries` against git itself: every config here, written and
/// random, reads as `git config --list` reads it, and is refused exactly where git
/// refuses it (red team, session 44: values that were cut at an escaped quote, a
/// quoted `;` or a continued line protected nothing while git ran the rest).
struct GitConfigParserTests {
    /// What git reads: (key as git lists it, value), nil when git refuses the file.
    static func git(_ text: String) throws -> [String]? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sbx-gitcfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("config")
        try Data(text.utf8).write(to: file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        p.arguments = ["config", "--no-includes", "-f", file.path, "--list", "-z"]
        p.environment = ["HOME": dir.path, "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\0", omittingEmptySubsequences: false).dropLast().map {
            // key, then a newline and the value; a key alone is git's boolean true.
            $0.unicodeScalars.contains("\n") ? String($0) : String($0) + "\n"
        }
    }

    static func ours(_ text: String) -> [String]? {
        GitIndirections.entries(text).map { $0.map { GitIndirections.keyName(section: $0.0, key: $0.1) + "\n" + $0.2 } }
    }

    static let written: [String] = [
        "[core]\n\thooksPath = hooks\n",
        "[core] hooksPath = hooks",
        "[Core]\n\tHooksPath=  a b\t c  \n",
        "[core]\n\thooksPath = \"a  b \"  # c\n",
        "[core]\n\thooksPath = h\"oo ks\"x ; c\n",
        "[core]\n\thooksPath = \"ho\\\nks\"\n",
        "[core]\n\thooksPath = a\\\n  b\n",
        "[core]\n\thooksPath = \"a\\tb\\n\\b\\\\\\\"\"\n",
        "[core]\n\thooksPath = a\\qb\n",
        "[core]\n\thooksPath = \"unterminated\n",
        "[core]\n\tfsmonitor\n",
        "[core]\r\n\thooksPath = crlf\r\n",
        "\u{FEFF}[core]\n\thooksPath = bom\n",
        "[includeIf \"gitdir:/r[2]/\"]\n\tpath = x\n",
        "[filter \"F\"]\n\tclean = \"\\\"/usr/bin/env\\\" ./tools/fmt.sh\"\n",
        "[diff.Legacy]\n\ttextconv = x\n",
        "[sec \"sub\\\\sec\\\"q\"]\n\tk = v\n",
        "[sec \"a\"b\"]\n\tk = v\n",
        "[sec  \"a\" ]\n\tk = v\n",
        "[]\n",
        "k = v\n",
        "[s]\n\t1k = v\n",
        "[s]\n\tk-1 = v\n\tk_1 = v\n",
        "[s]\n\tk.x = v\n",
        "[s]\n\tk = v1\n[s]\n\tk = v2\n",
        "[s]\n\tk = é\u{301}\"x\"\u{301} ; ü\n",
        "# only a comment\n; another\n",
        "[s]\n\tk = \"a;b\" # c\n\tm = a#b\n",
        "[s]\n\tk =\n",
        "[s]\n\tk = \\\n",
    ]

    @Test func writtenConfigsReadAsGitReadsThem() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else {
            Issue.record("git is needed to compare with"); return
        }
        for text in Self.written {
            let theirs = try Self.git(text), mine = Self.ours(text)
            #expect(theirs == mine, "\(text.debugDescription): git \(String(describing: theirs)), ours \(String(describing: mine))")
        }
    }

    /// Random configs from the syntax's pieces, seeded so a failure repeats.
    @Test func randomConfigsReadAsGitReadsThem() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else {
            Issue.record("git is needed to compare with"); return
        }
        let pieces = ["[s]", "[s \"Sub\"]", "[a.B]", "\n", "\r\n", "\r", " ", "\t", "k", "K2", "-", "=", " = ", "\"", "\\",
                      "\\\"", "\\n", "\\t", "\\\n", ";", "#", "a", "./x.sh", "é", "\u{301}", "[", "]", "."]
        var rng = SplitMix(seed: 44)
        var mismatches = 0
        for _ in 0..<600 {
            var text = Bool.random(using: &rng) ? "[core]\n\tk = " : ""
            for _ in 0..<Int.random(in: 2...14, using: &rng) { text += pieces.randomElement(using: &rng)! }
            let theirs = try Self.git(text), mine = Self.ours(text)
            if theirs != mine {
                mismatches += 1
                Issue.record("\(text.debugDescription): git \(String(describing: theirs)), ours \(String(describing: mine))")
                if mismatches > 5 { return }
            }
        }
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
