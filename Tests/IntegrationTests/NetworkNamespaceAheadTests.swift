import CSandboxTestSupport
import Foundation
import Glibc
import Testing

/// A cold `exec` makes its run's network namespace on a thread of its own while it
/// prepares the rest (`NetworkNamespaceAhead`), and clones the init in it. What must
/// hold as with `CLONE_NEWNET`: every run has a namespace of its own, never the
/// host's or another run's; `lo` is up exactly when the plan says; and a run that
/// keeps a network capability gets one its own user namespace owns, where that
/// capability acts (one made ahead is the initial user namespace's).
@Suite struct NetworkNamespaceAheadTests {
    static let netns = "import os; print(os.readlink('/proc/self/ns/net'))"
    static let connect = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname()); print('connected')"

    @Test func aColdRunsNamespaceIsNeverTheHosts() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let host = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? "?"
        var seen: [String] = []
        for _ in 0..<3 {
            let r = try Harness.exec(policy: "agent", ["python3", "-c", Self.netns], cwd: ws)
            #expect(r.status == 0, "\(r.stderr)")
            seen.append(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Not compared with each other: the kernel reuses a freed namespace's inode
        // number, so runs one after the other may show the same one.
        #expect(!seen.contains(host) && !seen.contains(""), "namespaces \(seen), host \(host)")
    }

    /// `lo` as the plan says: up for `loopback` (the init could not bring it up in a
    /// namespace made ahead; the supervisor's thread did), down for `none` (the
    /// control: the same connect fails).
    @Test func loopbackIsUpExactlyWhenThePlanSaysSo() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let loopback = Harness.policy("name = \"lo\"\nextends = [\"agent\"]\n[network]\nmode = \"loopback\"\n", in: ws, name: "lo.toml")
        let up = try Harness.exec(policy: loopback, ["python3", "-c", Self.connect], cwd: ws)
        #expect(up.status == 0 && up.stdout.contains("connected"), "loopback: \(up.status) \(up.stderr)")
        let down = try Harness.exec(policy: "agent", ["python3", "-c", Self.connect], cwd: ws)
        #expect(down.status != 0 && down.stderr.contains("unreachable"), "none: \(down.status) \(down.stdout) \(down.stderr)")
    }

    /// While a cold run's command sleeps: its init's namespace is one made ahead
    /// (owned by the initial user namespace) for `agent`, and its own user
    /// namespace's for a run that keeps `net_bind_service`, which then binds port 80.
    @Test func onlyARunWithoutNetworkCapabilitiesTakesOneMadeAhead() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let keep = Harness.policy("name = \"keep\"\nextends = [\"agent\"]\n[capabilities]\nkeep = [\"net_bind_service\"]\n", in: ws, name: "keep.toml")
        let bind80 = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 80)); print('bound'); time.sleep(2)"
        for (policy, argv, madeAhead) in [("agent", ["sleep", "2"], 1), (keep, ["python3", "-c", bind80], 0)] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Harness.binary)
            p.arguments = ["exec", "--policy", policy, "--"] + argv
            p.currentDirectoryURL = URL(fileURLWithPath: ws)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let inits = SpawnerTests.waitForInits(of: p.processIdentifier, count: 1)
            #expect(inits.count == 1, "\(policy): no init")
            if let i = inits.first { #expect(sbx_test_netns_owned_by_ours(i) == Int32(madeAhead), "\(policy): made ahead should be \(madeAhead)") }
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(policy): \(p.terminationStatus)")
            if madeAhead == 0 {
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(text.contains("bound"), "net_bind_service kept: \(text)")
            }
        }
    }
}
