import Foundation
@testable import SandboxPolicy

/// A fresh directory per test with helpers to write policy files into it.
final class PolicyScratch {
    let dir: String

    init() {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sandbox-policy-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir + "/profiles", withIntermediateDirectories: true)
        // A minimal OCI profile for `seccomp.profile = "test"`.
        write("profiles/test.json", #"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let path = dir + "/" + name
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Searches this directory for `extends = ["name"]` and `profiles/` for profiles.
    var loader: PolicyLoader {
        PolicyLoader(searchPath: [dir], profileSearchPath: [dir + "/profiles"])
    }

    func load(_ name: String) throws -> Policy {
        try loader.load(path: dir + "/" + name)
    }

    /// The diagnostics loading `name` throws (empty if it loads).
    func diagnostics(_ name: String) -> [PolicyDiagnostic] {
        do {
            _ = try load(name)
            return []
        } catch let e as PolicyError {
            return e.diagnostics
        } catch {
            return [PolicyDiagnostic(file: "?", message: "unexpected error \(error)")]
        }
    }
}

/// The repository root: this file is Tests/SandboxPolicyTests/<file>.swift.
func repositoryRoot(_ file: String = #filePath) -> String {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}
