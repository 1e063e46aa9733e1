#if canImport(Glibc)
import Glibc
#endif

/// The shared objects this process has loaded: what the sandbox
/// binary needs beside itself when it runs somewhere else, as an exported bundle's
/// entrypoint.
public enum LoadedLibraries {
    /// The directories holding them, each resolved (no symlink), sorted, once each:
    /// the file-backed mappings of this process (`/proc/self/maps`) whose name holds `.so`.
    public static func directories() -> [String] {
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        var dirs = Set<String>()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            // "addr perms offset dev inode    path": the path is the sixth field on.
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            guard path.contains(".so"), let resolved = realpath(path, nil) else { continue }
            var real = String(cString: resolved)
            free(resolved)
            if let last = real.lastIndex(of: "/") { real = String(real[..<last]) }
            if !real.isEmpty { dirs.insert(real) }
        }
        return dirs.sorted()
    }

    /// This executable's own path (`/proc/self/exe`, resolved). The link's target is
    /// the kernel's name for the file, resolved already: one readlink, where
    /// realpath(3) read the link and then every component of its target again.
    /// Replaced since this process started (an upgrade renames a new file over it),
    /// the target reads "<path> (deleted)": the path is still where the executable
    /// is installed, and what later runs start, so it is the answer (realpath of the
    /// link failed there, and a long-running server trusted no executable at all:
    /// red team, session 43).
    /// The suffix is matched and cut as bytes: a name ending in a prepended
    /// character (U+0600) joins the kernel's space into one `Character`, so
    /// `hasSuffix` missed it (red team, session 43).
    public static func executable() -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0, n < buf.count - 1, buf[0] == CChar(UInt8(ascii: "/")) {
            let bytes = buf[..<n].map { UInt8(bitPattern: $0) }
            let target = String(decoding: bytes, as: UTF8.self)
            let deleted = Array(" (deleted)".utf8)
            var st = stat()
            guard bytes.count > deleted.count, bytes.suffix(deleted.count).elementsEqual(deleted),
                  lstat(target, &st) != 0 else { return target }
            return String(decoding: bytes.dropLast(deleted.count), as: UTF8.self)
        }
        guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// ``executable()`` as it was when this process first asked (a server asks as it
    /// starts): where it was started from stays trusted after the file is renamed
    /// away and another put in its place (an upgrade by `mv old aside; cp new`), which
    /// `/proc/self/exe` then no longer names (red team, session 43).
    public static let executableAtStart: String? = executable()
}
