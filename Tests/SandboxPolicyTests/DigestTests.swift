import CDigest
import Foundation
import Testing
@testable import SandboxPolicy

/// `Digest` is our own SHA-256 (CDigest): every plan digest, policy digest, audit link
/// and [binary] pin depends on it being exactly SHA-256. Published vectors for both
/// block functions (the SHA extensions when this CPU has them, and the portable one),
/// and the two against each other over every length around the block boundaries.
@Suite(.serialized) struct DigestTests {
    static let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)

    /// FIPS 180-4 examples and the NIST long message.
    static let vectors: [([UInt8], String)] = [
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (million, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block is hashed first).
    static let hmacVectors: [([UInt8], [UInt8], String)] = [
        ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ]

    @Test(arguments: [false, true])
    func publishedVectors(portable: Bool) {
        sbx_sha256_use_portable(portable ? 1 : 0)
        defer { sbx_sha256_use_portable(0) }
        for (input, hex) in Self.vectors {
            #expect(Digest.sha256Hex(input) == hex, "\(input.count) bytes")
            // The same bytes in uneven pieces.
            let stream = Digest.SHA256Stream()
            var at = 0, piece = 1
            while at < input.count {
                let end = min(input.count, at + piece)
                input[at..<end].withUnsafeBytes { stream.update($0) }
                at = end; piece = piece * 3 % 1000 + 1
            }
            #expect(stream.finalHex() == hex, "streamed, \(input.count) bytes")
        }
        for (key, data, hex) in Self.hmacVectors {
            #expect(Digest.hex(Digest.hmacSHA256(key: key, data[...])) == hex)
        }
    }

    @Test func bothBlockFunctionsAgree() {
        defer { sbx_sha256_use_portable(0) }
        var state: UInt64 = 0x9e3779b97f4a7c15
        func byte() -> UInt8 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(state >> 56) }
        let lengths = Array(0...200) + [511, 512, 513, 4095, 4096, 4097, 65_537]
        for n in lengths {
            let input = (0..<n).map { _ in byte() }
            sbx_sha256_use_portable(1)
            let portable = Digest.sha256Hex(input)
            let portableMAC = Digest.hmacSHA256(key: Array(input.prefix(n % 150)), input[...])
            sbx_sha256_use_portable(0)
            #expect(Digest.sha256Hex(input) == portable, "\(n) bytes")
            #expect(Digest.hmacSHA256(key: Array(input.prefix(n % 150)), input[...]) == portableMAC, "\(n) bytes")
        }
    }
}
