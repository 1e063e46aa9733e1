import Glibc

/// Where a path lives on its filesystem, whatever mount shows it: the device
/// (`major:minor`) and the path below that filesystem's root. Two paths that name the
/// same place through different bind mounts (an alias of a directory, or of one of
/// its subdirectories) have the same location, so "is X inside Y" can be decided
/// without trusting the names: Y contains X when they are on the same device and
/// Y's path is a prefix of X's. Read from `/proc/self/mountinfo`.
public struct FileSystemLocation: Sendable, Equatable, CustomStringConvertible {
    public var device: String
    public var path: String

    public var description: String { "\(device):\(path)" }

    /// Whether `other` is this place or lies beneath it.
    public func contains(_ other: FileSystemLocation) -> Bool {
        device == other.device && (path == "/" || other.path == path || other.path.hasPrefix(path + "/"))
    }

    /// The location of an existing path (resolved with realpath), nil if it cannot be
    /// resolved or no mount holds it.
    public static func of(_ path: String) -> FileSystemLocation? { of(path, in: mounts()) }

    /// The mount table, read once for several lookups (`of(_:in:)`).
    public struct Table: Sendable { let mounts: [Mount] }
    public static func table() -> Table { Table(mounts: mounts()) }
    public static func of(_ path: String, in table: Table) -> FileSystemLocation? { of(path, in: table.mounts) }

    static func of(_ path: String, in mounts: [Mount]) -> FileSystemLocation? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        let canonical = String(cString: real)
        var best: Mount?
        for m in mounts where isBeneath(canonical, m.mountPoint) {
            // The longest mount point wins; of equal ones the later mount is on top.
            if best == nil || m.mountPoint.count >= best!.mountPoint.count { best = m }
        }
        guard let m = best else { return nil }
        let rest = m.mountPoint == "/" ? canonical : String(canonical.dropFirst(m.mountPoint.count))
        let inFS = m.root == "/" ? (rest.isEmpty ? "/" : rest) : m.root + rest
        return FileSystemLocation(device: m.device, path: inFS)
    }

    struct Mount: Sendable { var device: String; var root: String; var mountPoint: String }

    static func mounts() -> [Mount] {
        guard let text = RunDirectory.read("/proc/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            // id parent major:minor root mount-point options … - fstype source super
            let f = line.split(separator: " ", omittingEmptySubsequences: false)
            guard f.count > 4 else { return nil }
            return Mount(device: String(f[2]), root: unescape(f[3]), mountPoint: unescape(f[4]))
        }
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`.
    static func unescape(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isBeneath(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }
}
