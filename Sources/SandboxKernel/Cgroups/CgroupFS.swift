import Glibc

/// The few file operations the cgroup facility performs, each turning a failure
/// into a `KernelError` that names the operation, the path, the data and errno; and
/// the parsers of the kernel's file formats (flat-keyed, single value, pid list),
/// shared by both backends. Every path is absolute: the backends work under whatever
/// root they are given (a real hierarchy, or a faked cgroup2 tree in tests).
enum CgroupFS {
    /// Writes `data` to the control file `path` with ONE write(2): the kernel parses
    /// every write call as a whole value, so a short or split write would set
    /// something else. O_TRUNC as `echo x >` and runc's WriteFile do: cgroupfs ignores
    /// it, and on a plain file (a faked tree) the file then holds exactly `data`.
    static func write(_ path: String, _ data: String) throws {
        let fd: Int32
        do { fd = try open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) } catch let e as KernelError {
            // Report it as the write it was for: the data matters more than the step.
            throw KernelError.cgroup("write", path, data: data, errno: e.errno?.rawValue ?? 0)
        }
        defer { Glibc.close(fd) }
        try writeFD(fd, data, path: path)
    }

    /// Writes `data` to an already open cgroup file in one call.
    static func writeFD(_ fd: Int32, _ data: String, path: String) throws {
        var bytes = Array(data.utf8)
        let count = bytes.count
        while true {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, count) }
            if n == count { return }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw KernelError.cgroup("write", path, data: data, errno: errno) }
            // A partial write of a cgroup value cannot be resumed meaningfully.
            throw KernelError(operation: "write", subject: path,
                              detail: "short write: \(n) of \(count) bytes; " + KernelError.writing(data))
        }
    }

    static func open(_ path: String, _ flags: Int32, operation: String = "open") throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw KernelError.cgroup(operation, path, errno: errno)
        }
    }

    /// The whole file, or nil if it cannot be read (absent file, removed cgroup).
    static func read(_ path: String) -> String? {
        try? readThrowing(path)
    }

    static func readThrowing(_ path: String) throws -> String {
        let fd = try open(path, O_RDONLY | O_CLOEXEC)
        defer { Glibc.close(fd) }
        let r = FD.read(fd)
        if let err = r.errno { throw KernelError.cgroup("read", path, errno: err) }
        return String(decoding: r.bytes, as: UTF8.self)
    }

    /// `mkdir`; an existing directory is fine (our `sandbox` parents are shared by
    /// concurrent runs, so EEXIST is the normal case).
    static func mkdirShared(_ path: String) throws {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        throw KernelError.cgroup("mkdir", path, errno: errno)
    }

    /// `mkdir` of a directory that must be new (a run cgroup). EEXIST is an error: a
    /// run id is used once, so an existing directory belongs to someone else.
    static func mkdirNew(_ path: String) throws {
        if mkdir(path, 0o755) == 0 { return }
        let e = errno
        throw KernelError.cgroup("mkdir", path, errno: e,
                          detail: e == EEXIST ? "a cgroup with this run id already exists; `sandbox gc` removes stale ones" : nil)
    }

    /// The operation of ``rmdirRetrying(_:attempts:sleepUs:)``'s error: a directory
    /// left in place (``RunCgroup/directoriesLeft(_:)``).
    static let rmdirOperation = "rmdir"

    /// `rmdir` with a short bounded retry: a cgroup stays busy (EBUSY) for a moment
    /// after its last task exited while the kernel finishes tearing it down. ENOENT
    /// counts as done, which makes removal idempotent.
    static func rmdirRetrying(_ path: String, attempts: Int = 100, sleepUs: UInt32 = 10_000) -> KernelError? {
        var last: Int32 = 0
        for i in 0..<attempts {
            if rmdir(path) == 0 { return nil }
            last = errno
            if last == ENOENT { return nil }
            if last != EBUSY && last != EINTR { break }
            if i + 1 < attempts { usleep(sleepUs) }
        }
        return KernelError.cgroup(rmdirOperation, path, errno: last)
    }

    /// Removes every cgroup directory beneath `dir` that holds no process, deepest
    /// first (rmdir refuses one with a process or a child left); `dir` itself stays.
    static func removeEmptyDescendants(of dir: String, depth: Int = 0) {
        guard depth < 32 else { return }
        for entry in FD.entries(dir) where entry.isDirectory && entry.name != "." && entry.name != ".." {
            let child = dir + "/" + entry.name
            removeEmptyDescendants(of: child, depth: depth + 1)
            rmdir(child)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func isWritable(_ path: String) -> Bool {
        access(path, W_OK) == 0
    }

    /// Names of the subdirectories of `path` (cgroups are directories; their control
    /// files are regular files). Empty if unreadable.
    static func subdirectories(_ path: String) -> [String] {
        FD.entries(path).filter(\.isDirectory).map(\.name).sorted()
    }

    /// Parses flat-keyed files (`memory.events`, `cpu.stat`, `pids.events`,
    /// `memory.oom_control`): one `key value` pair per line.
    static func keyed(_ text: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count == 2, let v = UInt64(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }

    static func readKeyed(_ path: String) -> [String: UInt64]? {
        read(path).map(keyed)
    }

    /// A file holding a single number, e.g. `memory.peak`; nil if absent or "max".
    static func readNumber(_ path: String) -> UInt64? {
        guard let text = read(path) else { return nil }
        return UInt64(trimmed(text))
    }

    /// The pids listed in a `cgroup.procs` file (0 = not visible from our pid namespace).
    static func readPids(_ path: String) -> [Int32]? {
        guard let text = read(path) else { return nil }
        return text.split(separator: "\n").compactMap { Int32($0) }.filter { $0 > 0 }
    }

    /// The space- or newline-separated words of a file such as `cgroup.controllers`
    /// or `cgroup.subtree_control` ("cpu io memory pids\n").
    static func words(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }

    /// `text` without leading and trailing spaces and newlines.
    static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let f = s.first, f == " " || f == "\n" || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
