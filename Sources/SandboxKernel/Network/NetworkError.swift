import Glibc

/// A failed step of the network facility: what was attempted, on what (interface,
/// nft table, file), the errno and what the kernel or libnftables said. Prints as
/// `netlink RTM_NEWLINK sbx1a2b3c4d: File exists` or
/// `nft load ruleset inet sandbox: Invalid argument (Error: syntax error …)`.
public struct NetworkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation: `netlink RTM_NEWLINK`, `nft load ruleset`, `write`, `setns`, …
    public var operation: String
    /// The object: an interface name, an nft table, a file path, an address.
    public var subject: String
    /// The errno (0 when the failure has none, e.g. a full address pool).
    public var errno: Int32
    /// Extra data: the kernel's extended-ack message, nft's error text, the value
    /// written.
    public var data: String?

    public init(operation: String, subject: String, errno: Int32, data: String? = nil) {
        self.operation = operation; self.subject = subject; self.errno = errno; self.data = data
    }

    public var description: String {
        var s = "\(operation) \(subject)"
        if errno != 0 { s += ": \(KernelError.text(errno))" }
        if let data, !data.isEmpty { s += errno != 0 ? " (\(data))" : ": \(data)" }
        return s
    }

    /// The current errno, for the libc call that just failed.
    static func last(_ operation: String, _ subject: String, data: String? = nil) -> NetworkError {
        NetworkError(operation: operation, subject: subject, errno: Glibc.errno, data: data)
    }
}
