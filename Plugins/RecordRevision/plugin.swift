import Foundation
import PackagePlugin

/// Records the git revision the `sandbox` executable is built from
/// (`BuildRevision.git`, shown by `sandbox --version`): the commit, with `-dirty`
/// when tracked files differ from it; `unknown` when the package is not a git
/// checkout of its own (a tarball) or git is missing. Runs before every build, and
/// rewrites the file only when the revision changed, so an unchanged one costs no
/// recompilation.
@main struct RecordRevision: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL.path
        let out = context.pluginWorkDirectoryURL.appending(path: "revision")
        let script = #"""
            PATH=${PATH:-/usr/local/bin:/usr/bin:/bin}
            root=$1 dir=$2
            rev=unknown
            top=$(git -C "$root" rev-parse --show-toplevel 2>/dev/null) || top=
            if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(cd "$root" && pwd -P)" ]; then
                rev=$(git -C "$root" rev-parse --verify -q HEAD 2>/dev/null) || rev=unknown
                if [ "$rev" != unknown ] && ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then rev="$rev-dirty"; fi
            fi
            mkdir -p "$dir"
            new="// Generated before each build by the RecordRevision plugin; do not edit.
            enum BuildRevision { static let git = \"$rev\" }"
            if [ "$(cat "$dir/BuildRevision.swift" 2>/dev/null)" != "$new" ]; then
                printf '%s\n' "$new" > "$dir/BuildRevision.swift.tmp" && mv "$dir/BuildRevision.swift.tmp" "$dir/BuildRevision.swift"
            fi
            """#
        return [.prebuildCommand(
            displayName: "Recording the git revision",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "record-revision", root, out.path],
            outputFilesDirectory: out)]
    }
}
