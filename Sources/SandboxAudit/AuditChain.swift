import SandboxKernel
import SandboxPolicy

/// How one line of the audit log is bound to the next and to itself.
///
/// - `sha256`: a line's `prev` is the SHA-256 of the previous line's bytes, its `seal`
///   the SHA-256 of its own bytes before the seal. This catches any edit, removal or
///   reordering that does not also recompute the chain; whoever can rewrite the file
///   can recompute it.
/// - `hmac-sha256`: the same with HMAC-SHA256 under a key (`[audit] key_file`). Without
///   the key no line can be changed, added or removed in the middle, whatever else
///   is recomputed.
public enum ChainLink: Sendable, Equatable {
    case sha256
    case hmac(AuditKey)

    public var name: String {
        switch self {
        case .sha256: return "sha256"
        case .hmac: return "hmac-sha256"
        }
    }

    public var keyId: String? {
        if case .hmac(let k) = self { return k.id }
        return nil
    }

    /// The link of `bytes` as 64 hex digits.
    public func digest(_ bytes: ArraySlice<UInt8>) -> String {
        switch self {
        case .sha256: return Digest.sha256Hex(Array(bytes))
        case .hmac(let key): return Digest.hex(key.mac(bytes))
        }
    }
}

/// The chain's HMAC key: the bytes of the key file, read once.
public struct AuditKey: Sendable, Equatable {
    let bytes: [UInt8]
    /// Names the key without revealing it: the first 16 hex digits of
    /// HMAC(key, "sandbox audit key id"). The genesis record carries it, so verify can
    /// tell a wrong key from an edited file.
    public let id: String

    public static let minBytes = 32
    public static let maxBytes = 4096

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        id = String(Digest.hex(Self.hmac(key: bytes, Array("sandbox audit key id".utf8)[...])).prefix(16))
    }

    func mac(_ data: ArraySlice<UInt8>) -> [UInt8] { Self.hmac(key: bytes, data) }

    static func hmac(key: [UInt8], _ data: ArraySlice<UInt8>) -> [UInt8] { Digest.hmacSHA256(key: key, data) }

    /// Reads and checks the key file: a regular file reached with no symlink, owned by
    /// `invoker` or root, no access for group or others (0600 or 0400), 32 to 4096
    /// bytes. Anything else is refused: a key others can read or replace authenticates
    /// nothing.
    public static func load(path: String, invoker: UInt32) throws(AuditError) -> AuditKey {
        let secret: (bytes: [UInt8], owner: UInt32, mode: UInt32)
        do { secret = try AppendOnlyFile.readSecret(path, maxBytes: maxBytes) } catch {
            throw AuditError(step: "audit key", subject: path, message: "\(error)")
        }
        guard secret.owner == invoker || secret.owner == 0 else {
            throw AuditError(step: "audit key", subject: path, message: "owned by uid \(secret.owner); the key file must belong to the invoker (uid \(invoker)) or root")
        }
        guard secret.mode & 0o077 == 0 else {
            throw AuditError(step: "audit key", subject: path, message: "mode \(String(secret.mode, radix: 8)); the key file must not be readable or writable by group or others (chmod 600)")
        }
        guard secret.bytes.count >= minBytes, secret.bytes.count <= maxBytes else {
            throw AuditError(step: "audit key", subject: path, message: "\(secret.bytes.count > maxBytes ? "more than \(maxBytes)" : String(secret.bytes.count)) bytes; a key has \(minBytes) to \(maxBytes) bytes (e.g. head -c 32 /dev/urandom)")
        }
        return AuditKey(bytes: secret.bytes)
    }
}

/// Why the audit log could not be written or read: the step, the file, the reason.
public struct AuditError: Error, CustomStringConvertible, Sendable {
    public var step: String
    public var subject: String
    public var message: String
    public init(step: String, subject: String, message: String) {
        self.step = step; self.subject = subject; self.message = message
    }
    public var description: String { "\(step) \(subject): \(message)" }
}
