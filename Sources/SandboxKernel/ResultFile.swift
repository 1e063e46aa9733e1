import CSandbox
import Glibc

/// Where `sandbox exec --result FILE` writes the run result.
///
/// The directory is opened before anything runs, with no symlink anywhere on its path
/// (an earlier run could have planted one), and held by fd. The result is written at
/// the end to a new file in that directory and renamed over the name, so nothing the
/// command did to the name meanwhile is written into or trusted: not a FIFO (which
/// would block the supervisor), not a hard link to another file (which would be
/// clobbered), not a forged result (which is replaced), and a rename of the directory
/// itself only moves where the result lands. The CLI also refuses a result directory
/// inside a path the run can write (`FileSystemLocation`): there the command could
/// move the directory and leave a forged result where the caller looks.
public struct ResultFile {
    public let path: String
    /// The directory it is written in, as given (no symlink on it).
    public let directory: String
    let directoryFD: Int32
    let name: String

    public static func open(_ path: String) throws(KernelError) -> ResultFile {
        let trimmed = path
        guard let slash = trimmed.lastIndex(of: "/") else { return try open(directory: ".", name: trimmed, path: path) }
        let dir = trimmed[..<slash].isEmpty ? "/" : String(trimmed[..<slash])
        return try open(directory: dir, name: String(trimmed[trimmed.index(after: slash)...]), path: path)
    }

    private static func open(directory: String, name: String, path: String) throws(KernelError) -> ResultFile {
        guard !name.isEmpty, name != ".", name != ".." else {
            throw KernelError(operation: "open", subject: path, errno: EISDIR, detail: "--result names a file")
        }
        let oPath: Int32 = 0o10000000 // O_PATH (hidden from Swift without _GNU_SOURCE)
        let fd = sbx_fence_open_no_symlinks(directory, oPath | O_DIRECTORY | O_CLOEXEC, 0)
        guard fd >= 0 else {
            var e = KernelError.last("open", directory)
            if e.errno?.rawValue == ELOOP, let link = PathInfo.firstSymlink(on: directory) { e.detail = "\(link.path) -> \(link.target)" }
            throw e
        }
        var st = stat()
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            let kind = st.st_mode & S_IFMT
            if kind == S_IFLNK {
                Glibc.close(fd)
                throw KernelError(operation: "open", subject: path, errno: ELOOP, detail: "\(path) -> \(PathInfo.of(path).map { if case .symlink(let t) = $0 { return t } else { return "?" } } ?? "?")")
            }
            guard kind == S_IFREG else {
                Glibc.close(fd)
                throw KernelError(operation: "open", subject: path, errno: kind == S_IFDIR ? EISDIR : EINVAL,
                                  detail: "it exists and is not a regular file (a FIFO, device or socket would block or lose the result)")
            }
        }
        // Writable at all? Checked now, so a run is not started whose result is lost.
        guard faccessat(fd, ".", W_OK, AT_EACCESS) == 0 else {
            let e = KernelError.last("write into", directory)
            Glibc.close(fd)
            throw e
        }
        return ResultFile(path: path, directory: directory, directoryFD: fd, name: name)
    }

    /// Writes `bytes` to a new file beside the name and renames it into place.
    public func write(_ bytes: [UInt8]) throws(KernelError) {
        var rng = SystemRandomNumberGenerator()
        let tmp = ".\(name).\(String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16)).tmp"
        let fd = openat(directoryFD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last("create", tmp) }
        let ok = FD.writeAll(fd, bytes)
        let err = Glibc.errno
        Glibc.close(fd)
        guard ok else { unlinkat(directoryFD, tmp, 0); throw KernelError(operation: "write", subject: path, errno: err) }
        guard renameat(directoryFD, tmp, directoryFD, name) == 0 else {
            let e = KernelError.last("rename into place", path)
            unlinkat(directoryFD, tmp, 0)
            throw e
        }
    }
}
