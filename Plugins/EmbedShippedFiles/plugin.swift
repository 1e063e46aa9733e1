import Foundation
import PackagePlugin

/// Compiles the repository's `Policies/*.toml` and `Profiles/seccomp/*.json` into
/// `SandboxPolicy` (`ShippedFiles`), so the binary runs its shipped policies wherever
/// it is copied. The copies are made from the files at every build that changed one
/// (they are this command's inputs): they cannot drift from the repository.
@main struct EmbedShippedFiles: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var files: [String] = []
        for (dir, suffix) in [("Policies", ".toml"), ("Profiles/seccomp", ".json")] {
            let names = try FileManager.default.contentsOfDirectory(atPath: root.appending(path: dir).path)
            files += names.filter { $0.hasSuffix(suffix) }.sorted().map { "\(dir)/\($0)" }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "ShippedFiles.swift")
        return [.buildCommand(
            displayName: "Embedding Policies/ and Profiles/seccomp/ in SandboxPolicy",
            executable: try context.tool(named: "embed-shipped-files").url,
            arguments: [output.path, root.path] + files,
            inputFiles: files.map { root.appending(path: $0) },
            outputFiles: [output])]
    }
}
