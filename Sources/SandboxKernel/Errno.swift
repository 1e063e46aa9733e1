import CSandbox
import Glibc

/// An errno value, as swift-system's `Errno`: the number, its C name (`ENOENT`) and
/// the C library's text ("No such file or directory"). Encodes as the number.
public struct Errno: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno now, for the libc call that just failed.
    public static var current: Errno { Errno(Glibc.errno) }

    /// The C name, e.g. `ENOENT` (glibc's `strerrorname_np`); `errno N` for a value
    /// glibc does not name.
    public var name: String {
        guard let p = sbx_errno_name(rawValue) else { return "errno \(rawValue)" }
        return String(cString: p)
    }

    /// strerror(3): what people read.
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { message }
}

/// `error.errno == ENOENT`: an errno compared with the C constant (false when there
/// is none).
public func == (lhs: Errno?, rhs: Int32) -> Bool { lhs?.rawValue == rhs }
public func != (lhs: Errno?, rhs: Int32) -> Bool { lhs?.rawValue != rhs }
