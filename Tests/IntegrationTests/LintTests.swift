import Foundation
import Testing

/// Issue 5, acceptance 8: no PID is ever used to address a process. The product code
/// must not call kill(2) on a pid nor build a /proc/<pid>/ path; pidfds, flocked run
/// directories and cgroup files are the only handles. (/proc/self and
/// /proc/thread-self name the caller itself and are fine.)
@Suite struct LintTests {
    static func sourceFiles() -> [(path: String, text: String)] {
        let root = Harness.repoRoot + "/Sources"
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [(String, String)] = []
        for case let rel as String in walker where [".swift", ".c", ".h"].contains(where: rel.hasSuffix) {
            if let text = try? String(contentsOfFile: "\(root)/\(rel)", encoding: .utf8) { out.append((rel, text)) }
        }
        return out
    }

    /// Code without // and /* */ comments, so prose about kill(2) does not count.
    static func stripComments(_ text: String) -> String {
        var s = text.replacingOccurrences(of: #"/\*[\s\S]*?\*/"#, with: "", options: .regularExpression)
        s = s.replacingOccurrences(of: #"//[^\n]*"#, with: "", options: .regularExpression)
        return s
    }

    @Test func neverKillsByPid() {
        let files = Self.sourceFiles()
        #expect(!files.isEmpty)
        for (path, text) in files {
            let code = Self.stripComments(text)
            let hits = code.ranges(of: #"(?<![A-Za-z_.])kill\s*\("#)
            #expect(hits == 0, "\(path) calls kill(): use pidfd_send_signal on a pidfd")
        }
    }

    /// The one exception: a user namespace's id maps can only be written through
    /// /proc/<pid>/{uid,gid}_map, so `sbx_mounts_write_maps` writes those two files of
    /// the supervisor's own clone3'd child, which it has not reaped (its pid cannot
    /// name another process). Nothing else of /proc/<pid> is allowed, there or elsewhere.
    static let idMapWriter = (file: "CSandbox/mounts.c", allowed: [#""/proc/%d/uid_map""#, #""/proc/%d/gid_map""#])

    @Test func neverReadsAnotherProcessProc() {
        for (path, text) in Self.sourceFiles() {
            var code = Self.stripComments(text)
            if path == Self.idMapWriter.file {
                for a in Self.idMapWriter.allowed {
                    #expect(code.ranges(of: NSRegularExpression.escapedPattern(for: a)) == 1, "\(path): expected exactly one \(a)")
                    code = code.replacingOccurrences(of: a, with: "")
                }
            }
            for pattern in [#"/proc/\\\("#, #"/proc/%"#, #""/proc/"\s*\+"#, #"/proc/[0-9]"#] {
                #expect(code.ranges(of: pattern) == 0, "\(path) builds a /proc/<pid> path (\(pattern))")
            }
        }
    }
}

extension String {
    func ranges(of pattern: String) -> Int {
        (try? NSRegularExpression(pattern: pattern)).map {
            $0.numberOfMatches(in: self, range: NSRange(startIndex..., in: self))
        } ?? 0
    }
}
