import Foundation
import Testing
@testable import SandboxPolicy

@Suite struct ByteSizeTests {
    @Test(arguments: [
        ("1024", 1024), ("1024B", 1024), ("0", 0), ("64KiB", 65_536), ("64K", 65_536), ("64KB", 64_000),
        ("512MiB", 536_870_912), ("512M", 536_870_912), ("100MB", 100_000_000), ("2GiB", 2_147_483_648),
        ("2G", 2_147_483_648), ("3GB", 3_000_000_000), ("1TiB", 1_099_511_627_776), ("1TB", 1_000_000_000_000),
        ("1.5GiB", 1_610_612_736), ("0.5K", 512), (" 8 MiB ", 8_388_608),
    ] as [(String, UInt64)])
    func parses(_ text: String, _ bytes: UInt64) throws {
        #expect(try ByteSize.parse(text).get() == bytes)
    }

    @Test(arguments: ["2XB", "", "MiB", "-1", "1.GiB", "1.5B", "1e3", "99999999999TiB", "12 34"])
    func rejects(_ text: String) {
        guard case .failure(let e) = ByteSize.parse(text) else {
            Issue.record("\"\(text)\" was accepted")
            return
        }
        #expect(e.message.contains("KiB, MiB, GiB, TiB"))
    }

    @Test func formats() {
        #expect(ByteSize.format(bytes: 2 << 30) == "2GiB")
        #expect(ByteSize.format(bytes: 1000) == "1000B")
    }
}

@Suite struct DurationTests {
    @Test(arguments: [
        ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("500ms", 500), ("1m30s", 90_000),
        ("1h30m", 5_400_000), ("2d", 172_800_000), ("30", 30_000), ("1s500ms", 1_500),
    ] as [(String, UInt64)])
    func parses(_ text: String, _ ms: UInt64) throws {
        #expect(try PolicyDuration.parseMilliseconds(text).get() == ms)
    }

    // Digits and unit letters are ASCII: an Arabic-Indic three or a fullwidth s is not one.
    @Test(arguments: ["forever", "", "5x", "m5", "1m1m", "1.5s", "-3s", "\u{663}s", "3\u{FF53}"])
    func rejects(_ text: String) {
        guard case .failure(let e) = PolicyDuration.parseMilliseconds(text) else {
            Issue.record("\"\(text)\" was accepted")
            return
        }
        #expect(e.message.contains("\"1m30s\""))
    }

    @Test func roundTrips() throws {
        for ms: UInt64 in [500, 30_000, 90_000, 5_400_000, 90_061_001] {
            #expect(try PolicyDuration.parseMilliseconds(PolicyDuration.format(milliseconds: ms)).get() == ms)
        }
        #expect(PolicyDuration.format(milliseconds: 90_000) == "1m30s")
    }
}

@Suite struct PathTemplateTests {
    func parse(_ s: String, optional: Bool = true) -> Result<PathTemplate, PolicyValueError> {
        PathTemplates.parse(s, policyDir: "/etc/sandbox/policies", allowOptional: optional)
    }

    @Test(arguments: [
        ("/usr", "/usr", false), ("/usr/", "/usr", false), ("//usr//lib/", "/usr/lib", false),
        ("/usr/./lib", "/usr/lib", false), ("/", "/", false), ("/lib64?", "/lib64", true),
        ("{cwd}", "{cwd}", false), ("{cwd}/", "{cwd}", false), ("{home}/.cache", "{home}/.cache", false),
        ("/run/user/{uid}/x", "/run/user/{uid}/x", false), ("/tmp/{run_id}-{gid}", "/tmp/{run_id}-{gid}", false),
        ("{policy_dir}/data", "/etc/sandbox/policies/data", false),
        ("{policy_dir}", "/etc/sandbox/policies", false),
        ("{policy_dir}/opt?", "/etc/sandbox/policies/opt", true),
        // Not ASCII: scanned as characters.
        ("/é/{uid}-x", "/é/{uid}-x", false), ("{cwd}/é", "{cwd}/é", false),
    ] as [(String, String, Bool)])
    func accepts(_ text: String, _ raw: String, _ optional: Bool) throws {
        let t = try parse(text).get()
        #expect(t.raw == raw)
        #expect(t.optional == optional)
    }

    @Test(arguments: [
        ("usr/lib", "must be absolute (start with / or {cwd}, {home}, {policy_dir})"),
        ("", "empty path"),
        ("?", "empty path"),
        ("{tmp}/x", "unknown template \"{tmp}\""),
        ("/x/{cwd}", "may only start a path"),
        ("{cwd}x", "may only start a path"),
        ("{uid}/x", "must be absolute"),
        ("/a/../b", "\"..\""),
        ("/a/{cwd", "unclosed"),
        ("/a}", "unmatched"),
        ("/a\0b", "NUL"),
        // A combining mark after the slash makes another character than "/".
        ("{cwd}/\u{301}x", "may only start a path"),
        ("/é/{cwd}", "may only start a path"),
        ("/é/{nope}", "unknown template \"{nope}\""),
    ])
    func rejects(_ text: String, _ fragment: String) {
        guard case .failure(let e) = parse(text) else {
            Issue.record("\"\(text)\" was accepted")
            return
        }
        #expect(e.message.contains(fragment), "\(e.message)")
    }

    @Test func optionalMarkerOnlyWhereAllowed() {
        guard case .failure(let e) = parse("/var/log/x?", optional: false) else {
            Issue.record("accepted")
            return
        }
        #expect(e.message.contains("optional marker"))
    }

    @Test func protectNames() throws {
        #expect(try PathTemplates.parseName(".git").get() == ".git")
        #expect(try PathTemplates.parseName("./.github/workflows/").get() == ".github/workflows")
        for bad in ["", "/etc", "../x", "a/../../b", "{cwd}/x", "."] {
            if case .success = PathTemplates.parseName(bad) { Issue.record("\"\(bad)\" was accepted") }
        }
    }

    @Test func lexicalPaths() {
        #expect(Paths.normalize("a/./b/../c//") == "a/c")
        #expect(Paths.normalize("../x") == "../x")
        #expect(Paths.normalize("/../x") == "/x")
        #expect(Paths.join("/etc/p", "../a/b.toml") == "/etc/a/b.toml")
        #expect(Paths.dirname("/a/b.toml") == "/a")
        #expect(Paths.dirname("b.toml") == ".")
        #expect(Paths.dirname("/b.toml") == "/")
    }
}

@Suite struct SourceIndexTests {
    @Test func findsKeysHeadersAndArrayTables() {
        let text = """
            # comment
            version = 1
            [process]
            env.pass = [
              "PATH",   # [not.a.header]
              "HOME",
            ]
            hostname = "x"
            [[network.allow]]
            cidr = "a"
            [[network.allow]]
            ports = [1]
            [binary.pin]
            "/usr/bin/x" = "sha256:…"
            [audit]
            path = \"\"\"
            [fake]
            \"\"\"
            """
        let index = SourceIndex(source: text)
        func line(_ components: [TOMLPath.Component]) -> Int? { index.line(for: TOMLPath(components: components)) }
        #expect(line([.key("version")]) == 2)
        #expect(line([.key("process"), .key("env"), .key("pass")]) == 4)
        #expect(line([.key("process"), .key("env"), .key("pass"), .index(0)]) == 5)
        #expect(line([.key("process"), .key("env"), .key("pass"), .index(1)]) == 6)
        #expect(line([.key("process"), .key("hostname")]) == 8)
        #expect(line([.key("network"), .key("allow"), .index(0), .key("cidr")]) == 10)
        #expect(line([.key("network"), .key("allow"), .index(1), .key("ports"), .index(0)]) == 12)
        #expect(line([.key("binary"), .key("pin"), .key("/usr/bin/x")]) == 14)
        #expect(line([.key("audit"), .key("path")]) == 16)
        #expect(line([.key("fake")]) == nil)
        #expect(line([.key("not")]) == nil)
        #expect(TOMLPath(components: [.key("binary"), .key("pin"), .key("/usr/bin/x")]).description == "binary.pin.\"/usr/bin/x\"")
    }
}

@Suite struct DataDirectoryTests {
    @Test func environmentWins() {
        let d = DataDirectory.locate(environment: ["SANDBOX_DATA_DIR": "/opt/sb"], executablePath: "/usr/bin/sandbox")
        #expect(d == DataDirectory(root: "/opt/sb"))
        #expect(d?.policies == "/opt/sb/Policies")
        #expect(d?.profiles == "/opt/sb/Profiles")
        #expect(d?.seccompProfiles == "/opt/sb/Profiles/seccomp")
    }

    @Test func walksUpFromTheExecutable() throws {
        let s = PolicyScratch()
        s.write("repo/Policies/base.toml", "")
        s.write("repo/Profiles/seccomp/default.json", "{}")
        s.write("repo/.build/debug/sandbox", "")
        let d = DataDirectory.locate(environment: [:], executablePath: s.dir + "/repo/.build/debug/sandbox")
        #expect(d?.root == s.dir + "/repo")
    }

    @Test func fallsBackToShare() throws {
        let s = PolicyScratch()
        s.write("prefix/bin/sandbox", "")
        s.write("prefix/share/sandbox/Policies/base.toml", "")
        let d = DataDirectory.locate(environment: [:], executablePath: s.dir + "/prefix/bin/sandbox")
        #expect(d?.root == s.dir + "/prefix/share/sandbox")
        #expect(DataDirectory.locate(environment: [:], executablePath: nil) == nil)
    }

    @Test func theTestBinaryFindsThisRepository() {
        // The test executable lives under <repo>/.build*/…, like .build/debug/sandbox.
        guard ProcessInfo.processInfo.environment["SANDBOX_DATA_DIR"] == nil,
              let exe = DataDirectory.executablePath(), exe.hasPrefix(repositoryRoot() + "/") else { return }
        #expect(DataDirectory.locate()?.root == repositoryRoot())
    }
}

/// The size and duration parsers, the policy catalog and the git config reader trim
/// with our own `trimmingBlanks` instead of Foundation's (the binary does not link
/// Foundation): it must trim exactly what Foundation's `.whitespaces` (and
/// `.whitespacesAndNewlines`) trims, so a policy accepted before is accepted now and
/// vice versa.
@Suite struct BlankTrimmingTests {
    @Test(arguments: [
        "", " ", "\t", "  8 MiB\t", "\u{00A0}30s\u{3000}", "\u{2003}x\u{2009}", "\n5s\n", "\r1m\r",
        "a b", " \u{0301}x", "x\u{200B}", "\u{1680}1h\u{202F}", "\u{85}2s", "é ", "\u{FEFF}3s",
    ])
    func trimsWhatFoundationTrims(_ text: String) {
        #expect(text.trimmingBlanks() == text.trimmingCharacters(in: .whitespaces))
        #expect(text[...].trimmingBlanks() == text.trimmingCharacters(in: .whitespaces))
        #expect(text.trimmingBlanks(newlines: true) == text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Every scalar, alone between two letters and at both ends.
    @Test func agreesOnEveryScalar() {
        for v in 0...0x10FFFF {
            guard let u = Unicode.Scalar(v) else { continue }
            let s = String(u) + "a" + String(u) + "b" + String(u)
            if s.trimmingBlanks() != s.trimmingCharacters(in: .whitespaces) {
                Issue.record("U+\(String(v, radix: 16)) trimmed differently")
            }
            if s.trimmingBlanks(newlines: true) != s.trimmingCharacters(in: .whitespacesAndNewlines) {
                Issue.record("U+\(String(v, radix: 16)) trimmed differently with newlines")
            }
        }
    }
}

/// The normalisers' fast path takes exactly the ASCII paths they would return unchanged.
@Suite struct NormalPathTests {
    @Test func normalIsWhatNormalisingLeavesAlone() {
        let paths = ["/", "/usr", "/usr/lib", "/a/b/c", "/.git", "/a/.b", "/a..", "/a/...", "/é/x",
                     "", "usr", "//", "/usr/", "//usr", "/usr//lib", "/./usr", "/usr/.", "/usr/..", "/../a",
                     "/a/./b", "/a/../b", ".", "..", "a/b", "/a/b/", "/\u{301}", "/a/.\u{301}",
                     "a/../..", "../a", "../../a/./b", "/a/b/../../..", "a/./b/", "/a/b/c/../../d", "a/..", "./",
                     "/..", "../..", "a/../../b", "/usr/bin/../share/sandbox", "x/y/../../../z/"]
        for p in paths {
            let ascii = p.utf8.allSatisfy { $0 < 0x80 }
            #expect(PathText.isNormalAbsolute(p) == (ascii && p.hasPrefix("/") && Paths.normalizeBySplitting(p) == p), "\(p.debugDescription)")
            #expect(Paths.normalize(p) == Paths.normalizeBySplitting(p), "\(p.debugDescription)")
        }
    }
}

/// Host paths by their bytes (red team, session 37): `String`'s `==` and `hasPrefix`
/// follow Unicode canonical equivalence, and a slash followed by a combining mark is
/// one `Character`, so byte-wise "beneath" and a cut by `Character` count disagreed.
@Suite struct PathBytesTests {
    let nfc = "/w/\u{E9}", nfd = "/w/e\u{301}"

    @Test func beneathAndSameAreByBytes() {
        #expect(nfc == nfd, "the premise: one String")
        #expect(!PathText.same(nfc, nfd) && PathText.same(nfc, "/w/\u{E9}"))
        #expect(!PathText.isBeneath(nfc + "/x", nfd) && PathText.isBeneath(nfd + "/x", nfd))
        #expect(PathText.Key(nfc) != PathText.Key(nfd) && Set([PathText.Key(nfc), PathText.Key(nfd)]).count == 2)
        for (path, root, want) in [("/a", "/", true), ("/", "/", true), ("/a", "/a", true), ("/ab", "/a", false),
                                   ("/a", "/ab", false), ("/a/b", "/a", true), ("/a/\u{301}x", "/a", true)] {
            #expect(PathText.isBeneath(path, root) == want, "\(path.debugDescription) beneath \(root.debugDescription)")
        }
    }

    @Test func theRemainderIsCutByBytes() {
        let path = "/w/\u{301}x"
        #expect(Array(PathText.remainder(of: path, under: "/w").utf8) == Array("\u{301}x".utf8),
                "a slash and a combining mark are one Character: a cut by Character count took the mark")
        #expect(PathText.remainder(of: "/w", under: "/w") == "" && PathText.remainder(of: "/a/b", under: "/") == "a/b")
        #expect(PathText.components("a/\u{301}b/c").map { Array($0.utf8) } == [Array("a".utf8), Array("\u{301}b".utf8), Array("c".utf8)])
    }

    /// Parent, last component, absolute and suffix by bytes: the `Character` forms
    /// (`lastIndex(of: "/")`, `hasPrefix("/")`, `hasSuffix`) pass over a slash that
    /// a combining mark follows. Each premise is checked first, so the case is real.
    @Test func parentAndAbsoluteAreByBytes() {
        let marked = "/r/\u{301}w"
        #expect(marked.lastIndex(of: "/") == marked.startIndex && !"/\u{301}x".hasPrefix("/"), "the premise")
        #expect(Array(PathText.parent(marked).utf8) == Array("/r".utf8))
        #expect(PathText.parent("/") == "/" && PathText.parent("/a") == "/" && PathText.parent("/a/b") == "/a")
        #expect(PathText.isAbsolute("/\u{301}x") && !PathText.isAbsolute("\u{301}/x") && !PathText.isAbsolute(""))
        #expect(Array(PathText.lastComponent("/usr/bin/\u{301}x").utf8) == Array("\u{301}x".utf8))
        #expect(PathText.lastComponent("git") == "git" && PathText.lastComponent("/usr/bin/git") == "git")
        #expect(PathText.endsWith("/a/.git", "/.git") && !PathText.endsWith("/a/.git\u{301}", "/.git") && !PathText.endsWith("t", "/.git"))
    }
}
