import Foundation
import Testing
@testable import SandboxPolicy

/// Every file in Policies/ loads cleanly with the shipped profiles, and says what its
/// header promises.
@Suite struct ShippedPoliciesTests {
    static let root = repositoryRoot()
    static let loader = PolicyLoader(searchPath: [root + "/Policies"],
                                     profileSearchPath: [root + "/Profiles/seccomp"])
    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Policies")) ?? []
        return names.filter { $0.hasSuffix(".toml") }.sorted()
    }()

    func load(_ name: String) throws -> Policy {
        try Self.loader.load(path: Self.root + "/Policies/\(name).toml")
    }

    @Test func theFiveShippedPoliciesExist() {
        #expect(Set(["base.toml", "agent.toml", "agent-net.toml", "ci-build.toml", "strict.toml"]).isSubset(of: Set(Self.files)))
    }

    @Test(arguments: files)
    func loadsCleanly(_ file: String) throws {
        do {
            let p = try Self.loader.load(path: Self.root + "/Policies/" + file)
            #expect(p.name + ".toml" == file)
            #expect(p.sources.last == Self.root + "/Policies/" + file)
            #expect(p.seccomp.profile != nil, "every shipped policy runs under a seccomp profile")
            #expect(p.capabilities.keep.isEmpty)
        } catch let e as PolicyError {
            Issue.record("\(file):\n\(e)")
        }
    }

    @Test func base() throws {
        let p = try load("base")
        #expect(p.sources.count == 1)
        #expect(p.network.mode == .none)
        #expect(p.filesystem.rw.isEmpty)
        #expect(p.filesystem.ro.contains(PathTemplate("/lib64", optional: true)))
        // TLS needs the CA certificates, not /etc/ssl/private (0600 host keys).
        let tls = ["/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/pki/tls/certs", "/etc/pki/tls/openssl.cnf",
                   "/etc/pki/ca-trust/extracted"]
        for path in tls { #expect(p.filesystem.ro.contains(PathTemplate(path, optional: true)), "\(path)") }
        #expect(!p.filesystem.ro.contains { $0.raw == "/etc/ssl" || $0.raw == "/etc/pki" || $0.raw.hasPrefix("/etc/ssl/private") })
        #expect(p.seccomp.deny.contains("ptrace") && p.seccomp.deny.contains("io_uring_setup"))
        #expect(p.seccomp.socketFamilies == [.unix, .inet, .inet6])
        #expect(p.resources.rlimits[.core] == .value(0))
        #expect(p.landlock.mode == .enforce)
    }

    @Test func agent() throws {
        let p = try load("agent")
        #expect(p.sources.map { ($0 as NSString).lastPathComponent } == ["base.toml", "agent.toml"])
        #expect(p.filesystem.rw == [PathTemplate("{cwd}")])
        #expect(p.filesystem.protect == [".git", ".sandbox"])
        #expect(p.network.mode == .none)
        #expect(p.process.timeoutMs == 600_000)
        #expect(p.resources.memoryBytes == 2 << 30)
        #expect(p.resources.pids == 256)
        #expect(p.landlock.scope == [.abstractUnixSocket, .signal])
        #expect(p.process.newSession)
    }

    @Test func agentNet() throws {
        let p = try load("agent-net")
        #expect(p.sources.count == 3)
        #expect(p.network.mode == .egress)
        #expect(!p.network.allow.isEmpty && !p.network.dns.isEmpty)
        #expect(p.filesystem.rw == [PathTemplate("{cwd}")])
    }

    @Test func ciBuild() throws {
        let p = try load("ci-build")
        #expect(p.process.timeoutMs == 2 * 3_600_000)
        #expect(p.resources.memoryBytes == 8 << 30)
        #expect(p.resources.pids == 4096)
        #expect(p.resources.rlimits[.nofile] == .value(16384))
        #expect(p.network.mode == .egress)
        #expect(p.network.allow.allSatisfy { $0.proto == .tcp && !$0.ports.isEmpty })
        #expect(p.filesystem.tmpfs == [PathTemplate("/tmp")])
    }

    @Test func strict() throws {
        let p = try load("strict")
        #expect(p.filesystem.ro.contains(PathTemplate("{cwd}")))
        #expect(p.filesystem.rw.isEmpty)
        #expect(p.network.mode == .none)
        #expect(p.process.user == .id(65534))
        #expect(p.process.timeoutMs == 60_000)
        #expect(p.resources.memoryBytes == 512 << 20)
        #expect(p.resources.pids == 64)
        #expect(p.landlock.connectTCP == [])
    }

    @Test func namesResolveThroughTheSearchPath() throws {
        #expect(try Self.loader.resolve(nameOrPath: "agent", relativeTo: nil) == Self.root + "/Policies/agent.toml")
    }
}
