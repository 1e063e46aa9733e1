import CDigest

/// SHA-256 as lowercase hex: the one implementation every layer uses (policy file
/// digests here, plan digests in SandboxPlan, the audit chain in SandboxAudit).
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SBX_SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { buf in sbx_sha256(buf.baseAddress, buf.count, &out) }
        return out
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { sha256Hex($0) }
    }

    /// The one SHA-256-as-hex (`sbx_sha256_hex`), which SandboxKernel calls too.
    public static func sha256Hex(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out = [CChar](repeating: 0, count: Int(SBX_SHA256_HEX_LENGTH) + 1)
        sbx_sha256_hex(bytes.baseAddress, bytes.count, &out)
        return String(cString: out)
    }

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
        private var ctx = sbx_sha256_ctx()
        public init() { sbx_sha256_init(&ctx) }
        public func update(_ bytes: UnsafeRawBufferPointer) {
            sbx_sha256_update(&ctx, bytes.baseAddress, bytes.count)
        }
        public func finalHex() -> String {
            var out = [UInt8](repeating: 0, count: Int(SBX_SHA256_DIGEST_LENGTH))
            sbx_sha256_final(&ctx, &out)
            return Digest.hex(out)
        }
    }

    /// HMAC-SHA256 (RFC 2104) of `data` under `key`.
    public static func hmacSHA256(key: [UInt8], _ data: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SBX_SHA256_DIGEST_LENGTH))
        key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in sbx_hmac_sha256(k.baseAddress, k.count, d.baseAddress, d.count, &out) }
        }
        return out
    }
}
