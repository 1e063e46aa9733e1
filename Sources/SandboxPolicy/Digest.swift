import CCrypto

/// SHA-256 as lowercase hex: the one implementation every layer uses (policy file
/// digests here, plan digests in SandboxPlan, the audit chain in SandboxAudit).
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { buf in _ = SHA256(buf.baseAddress, buf.count, &out) }
        return out
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String { hex(sha256(bytes)) }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Digest {
    /// SHA-256 over bytes given in pieces (a file read in chunks), as lowercase hex.
    public final class SHA256Stream {
        private let ctx: OpaquePointer?
        public init() {
            ctx = EVP_MD_CTX_new()
            EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
        }
        deinit { EVP_MD_CTX_free(ctx) }
        public func update(_ bytes: UnsafeRawBufferPointer) {
            _ = EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count)
        }
        public func finalHex() -> String {
            var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
            var n: UInt32 = 0
            EVP_DigestFinal_ex(ctx, &out, &n)
            return Digest.hex(out)
        }
    }
}
