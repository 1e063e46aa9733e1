import Foundation
import Testing
@testable import SandboxPolicy

/// The shipped policies and profiles compiled into the binary (`BuiltIn`): the same
/// bytes as the repository's files, loadable with no directory at all, overridable
/// by a directory earlier in the search path, and never read from the host.
@Suite struct BuiltInTests {
    static let root = repositoryRoot()

    /// The names of the repository's `Policies/*.toml`, sorted.
    static let shippedNames = repositoryFiles("Policies", ".toml").map { String(Paths.basename($0).dropLast(5)) }.sorted()

    /// `dir/*suffix` of the repository, as paths relative to it.
    static func repositoryFiles(_ dir: String, _ suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + dir)) ?? [])
            .filter { $0.hasSuffix(suffix) }.sorted().map { "\(dir)/\($0)" }
    }

    @Test func theEmbeddedCopiesAreTheRepositoryFiles() throws {
        for (dir, suffix, builtIn) in [("Policies", ".toml", BuiltIn.policies), ("Profiles/seccomp", ".json", BuiltIn.seccompProfiles)] {
            let files = Self.repositoryFiles(dir, suffix)
            #expect(!files.isEmpty)
            #expect(BuiltIn.files(in: builtIn) == files.map { BuiltIn.scheme + $0 }, "the built-in \(dir) lists other files")
            for f in files {
                let disk = try #require(FileManager.default.contents(atPath: Self.root + "/" + f))
                #expect(BuiltIn.contents(of: BuiltIn.scheme + f) == Array(disk), "\(f) differs from its built-in copy")
            }
        }
    }

    /// Each shipped policy, loaded with only the built-in search paths, comes entirely
    /// from the binary: every file of its extends chain and its seccomp profile.
    @Test func everyBuiltInPolicyLoadsFromTheBinaryAlone() throws {
        let loader = PolicyLoader(searchPath: [BuiltIn.policies], profileSearchPath: [BuiltIn.seccompProfiles])
        let names = BuiltIn.files(in: BuiltIn.policies).map { String(Paths.basename($0).dropLast(5)) }
        #expect(names.sorted() == Self.shippedNames)
        #expect(names.contains("agent") && names.contains("base"))
        for name in names {
            let p = try loader.load(nameOrPath: name)
            #expect(p.sources.last == "builtin:Policies/\(name).toml")
            #expect(p.sources.allSatisfy(BuiltIn.isBuiltIn), "\(name): \(p.sources)")
            #expect(p.seccomp.profile?.source == "builtin:Profiles/seccomp/default.json")
            // The same policy as the repository's files give.
            let disk = try PolicyLoader(searchPath: [Self.root + "/Policies"], profileSearchPath: [Self.root + "/Profiles/seccomp"])
                .load(nameOrPath: name)
            #expect(p.sourceDigests == disk.sourceDigests)
            #expect(p.digest == disk.digest)
        }
    }

    @Test func theDefaultSearchPathsEndWithTheBuiltInOnes() {
        #expect(PolicyLoader.defaultSearchPath().last == BuiltIn.policies)
        #expect(PolicyLoader(searchPath: []).profileSearchPath.last == BuiltIn.seccompProfiles)
    }

    @Test func aDirectoryEarlierInTheSearchPathOverridesAndCanExtendTheBuiltIn() throws {
        let s = PolicyScratch()
        s.write("agent.toml", """
            extends = ["builtin:Policies/agent.toml"]
            [process]
            hostname = "mine"
            """)
        let loader = PolicyLoader(searchPath: [s.dir, BuiltIn.policies], profileSearchPath: [BuiltIn.seccompProfiles])
        let p = try loader.load(nameOrPath: "agent")
        #expect(p.sources == ["builtin:Policies/base.toml", "builtin:Policies/agent.toml", s.dir + "/agent.toml"])
        #expect(p.process.hostname == "mine")
        // `extends = ["base"]` in the built-in agent goes through the search path too.
        s.write("base.toml", "extends = [\"builtin:Policies/base.toml\"]\n[process]\nhostname = \"base-override\"\n")
        #expect(try loader.load(nameOrPath: "strict").sources
                == ["builtin:Policies/base.toml", s.dir + "/base.toml", "builtin:Policies/strict.toml"])
    }

    /// A relative name in a built-in policy stays among the built-in files: `..` never
    /// reaches the host's working directory, and `{policy_dir}` has no host directory.
    @Test func aBuiltInPathNeverBecomesAHostPath() throws {
        #expect(Paths.join(BuiltIn.policies, "../../../etc/passwd") == "builtin:../../etc/passwd")
        #expect(Paths.join(BuiltIn.policies, "x.toml") == "builtin:Policies/x.toml")
        #expect(Paths.absolute("builtin:Policies/agent.toml") == "builtin:Policies/agent.toml")
        #expect(PolicyFile.kind("builtin:../../etc/passwd") == .missing)
        #expect(PolicyFile.kind(BuiltIn.policies) == .directory)
        if case .success = PolicyFile.read("builtin:Policies/none.toml", limit: 1000) { Issue.record("read a missing built-in file") }
        if case .success = PathTemplates.parse("{policy_dir}/x", policyDir: BuiltIn.policies, allowOptional: false) {
            Issue.record("{policy_dir} expanded in a built-in policy")
        }
        // A built-in file is read within the same size limit as a host file.
        if case .failure(.tooLarge) = PolicyFile.read("builtin:Policies/base.toml", limit: 10) {} else {
            Issue.record("the size limit does not apply to built-in files")
        }
    }

    @Test func theCatalogListsEachNameOnceFromTheFirstDirectory() throws {
        let s = PolicyScratch()
        s.write("agent.toml", "# agent — my own agent\n# on two lines\n\nextends = [\"base\"]\n")
        s.write("extra.toml", "# a policy of mine\n")
        s.write("notes.txt", "not a policy")
        let catalog = PolicyCatalog(searchPath: [s.dir, BuiltIn.policies])
        #expect(catalog.names == (Self.shippedNames + ["extra"]).sorted())
        let agent = try #require(catalog.entries.first { $0.name == "agent" })
        #expect(agent.source == s.dir + "/agent.toml")
        #expect(agent.description == "my own agent on two lines")
        #expect(agent.extends == ["base"])
        #expect(agent.overrides == ["builtin:Policies/agent.toml"])
        let strict = try #require(catalog.entries.first { $0.name == "strict" })
        #expect(strict.source == "builtin:Policies/strict.toml")
        #expect(strict.extends == ["base"])
        #expect(strict.description.hasPrefix("run a command over the working directory"))
    }
}
