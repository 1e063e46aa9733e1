import SandboxVocabulary

/// The host's files as one compilation sees them: each question about a path asked
/// of the `FileInspector` once.
///
/// Why: the mount plan and the trust check walk every bind and trusted path component
/// by component, so the same prefixes were asked again and again (`/etc` some 16
/// times per plan, each an lstat, and each `location` a realpath(3) of readlinks):
/// about 170 lstats of some 17 paths per `agent` plan (issue 16). One answer per path
/// is also one view of the host for the whole plan.
///
/// Made by `PlanCompiler.compile` for each compilation and dropped with it, so
/// nothing is remembered from one plan to the next. Used by that compilation's one
/// thread only.
///
/// Keyed by the path's bytes, never by `String` equality: Swift strings that are
/// canonically equivalent compare equal (`K` and the Kelvin sign, NFC and NFD `é`)
/// while the kernel sees two different names, so one's answer (a directory) stood
/// for the other (a symlink to a directory a run can write) and the trust check
/// resolved a policy file through the wrong one (red team, session 43).
final class PlanFileView: FileInspector, @unchecked Sendable {
    let files: any FileInspector
    private var kinds: [PathText.Key: FileKind?] = [:]
    private var identities: [PathText.Key: FileIdentity?] = [:]
    private var linkCounts: [PathText.Key: Int?] = [:]
    private var locations: [PathText.Key: (device: String, path: String)?] = [:]

    init(_ files: any FileInspector) { self.files = files }

    func kind(of path: String) -> FileKind? { Self.once(&kinds, path) { files.kind(of: path) } }
    func identity(of path: String) -> FileIdentity? { Self.once(&identities, path) { files.identity(of: path) } }
    func linkCount(of path: String) -> Int? { Self.once(&linkCounts, path) { files.linkCount(of: path) } }
    func location(of path: String) -> (device: String, path: String)? {
        Self.once(&locations, path) { files.location(of: path) }
    }
    /// The same answer as `location(of:)` for such a path: one memo for both.
    func location(ofResolved path: String) -> (device: String, path: String)? {
        Self.once(&locations, path) { files.location(ofResolved: path) }
    }

    /// The answer for `path` from `known`, or asked now and kept (nil answers too).
    private static func once<T>(_ known: inout [PathText.Key: T?], _ path: String, _ ask: () -> T?) -> T? {
        let key = PathText.Key(path)
        if let answer = known[key] { return answer }
        let answer = ask()
        known[key] = .some(answer)
        return answer
    }

    // Asked once per plan already: passed through.
    func directoryEntries(of path: String) -> [String]? { files.directoryEntries(of: path) }
    func contents(of path: String, maxBytes: Int) -> String? { files.contents(of: path, maxBytes: maxBytes) }
    func bytes(of path: String, maxBytes: Int) -> [UInt8]? { files.bytes(of: path, maxBytes: maxBytes) }
    func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch? {
        files.unixSockets(under: roots, skipping: skipping, limit: limit)
    }
}
