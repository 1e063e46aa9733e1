import Glibc
import SandboxKernel
import SandboxPlan

/// Held by one `HostFiles`: the mount table, read on first use by the one thread that
/// compiles the plan. Never kept past the plan: a rename above a mount point changes
/// the table's text with no event to tell (ServeMountRenameTests).
final class MountTableOnce: @unchecked Sendable {
    lazy var table = FileSystemLocation.table()
}

/// The planner's view of host paths, answered by lstat/readlink in the kernel layer:
/// what the CLI gives the planner, and what a harness embedding the library can use.
public struct HostFiles: FileInspector {
    /// `memo`: what a long-lived process's plans share while it has not changed
    /// (`sandbox serve`); nil, the CLI's: everything asked afresh.
    public init(memo: HostViewMemo? = nil) { self.memo = memo }
    private let memo: HostViewMemo?

    public func kind(of path: String) -> FileKind? {
        switch PathInfo.of(path) {
        case nil: return nil
        case .directory?: return .directory
        case .file?: return .file
        case .other?: return .other
        case .symlink(let target)?: return .symlink(target: target)
        }
    }

    public func contents(of path: String, maxBytes: Int) -> String? {
        bytes(of: path, maxBytes: maxBytes).map { String(decoding: $0, as: UTF8.self) }
    }

    public func bytes(of path: String, maxBytes: Int) -> [UInt8]? {
        FD.regularFile(at: path, maxBytes: maxBytes)
    }

    /// Read once per plan: the trust check asks for many paths.
    private let mountTable = MountTableOnce()

    public func location(of path: String) -> (device: String, path: String)? {
        FileSystemLocation.of(path, in: mountTable.table).map { ($0.device, $0.path) }
    }

    public func location(ofResolved path: String) -> (device: String, path: String)? {
        FileSystemLocation.of(resolved: path, in: mountTable.table).map { ($0.device, $0.path) }
    }

    public func linkCount(of path: String) -> Int? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Int(st.st_nlink)
    }

    public func identity(of path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    public func directoryEntries(of path: String) -> [String]? { FD.names(inDirectory: path) }

    public func unixSockets(under roots: [String], skipping: Set<String>, limit: Int) -> SocketSearch? {
        let o = memo?.unixSockets(roots: roots, skip: skipping, limit: limit)
            ?? UnixSocketScan.scan(roots: roots, skip: skipping, limit: limit, mounts: mountTable.table)
        return SocketSearch(sockets: o.sockets, entries: o.entries, incompleteRoot: o.incompleteRoot,
                            incompleteReason: o.incompleteReason)
    }
}
