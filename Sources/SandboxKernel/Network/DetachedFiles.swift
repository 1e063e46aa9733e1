import CSandbox
import Glibc

/// Files that exist only as detached, read-only mounts (resolv.conf, hosts): never a
/// path on the host. Docs/design.md §4: a memfd cannot be mounted (EINVAL on 6.18), so
/// the supervisor makes a detached tmpfs with fsopen/fsconfig/fsmount, writes each
/// file through openat(mountfd, name), clones just that file with
/// open_tree(OPEN_TREE_CLONE), marks the clone read-only with mount_setattr, and the
/// child move_mount()s the clone over its destination in the new root
/// (ChildSpec.Mount.moveFD).
public enum DetachedFiles {
    /// One read-only mount fd per file, in order. The tmpfs itself is reachable only
    /// through the clones (its own mount fd is closed here).
    public static func readOnly(_ files: [(name: String, content: String)]) throws(NetworkError) -> [Int32] {
        guard !files.isEmpty else { return [] }
        let mnt = sbx_net_detached_tmpfs()
        guard mnt >= 0 else { throw NetworkError(operation: "fsopen/fsmount", subject: "tmpfs", errno: -mnt) }
        defer { Glibc.close(mnt) }
        var fds: [Int32] = []
        for file in files {
            let text = Array(file.content.utf8CString) // NUL-terminated: never an empty buffer
            let fd = text.withUnsafeBufferPointer { sbx_net_readonly_file(mnt, file.name, $0.baseAddress, $0.count - 1) }
            guard fd >= 0 else {
                for f in fds { Glibc.close(f) }
                throw NetworkError(operation: "detached read-only file", subject: file.name, errno: -fd)
            }
            fds.append(fd)
        }
        return fds
    }
}
