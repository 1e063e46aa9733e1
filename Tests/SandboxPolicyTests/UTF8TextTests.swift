import FoundationEssentials
import SandboxVocabulary
import Testing

/// `String(utf8Text:)` replaces FoundationEssentials' `String(bytes:encoding: .utf8)`
/// on the policy path: the same answer for every input, the byte-order mark included.
@Suite struct UTF8TextTests {
    static let cases: [[UInt8]] = [
        [], [0x61], Array("name = \"agent\"\n".utf8),
        [0xEF, 0xBB, 0xBF], [0xEF, 0xBB, 0xBF, 0x61], [0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, 0x61],
        [0x61, 0xEF, 0xBB, 0xBF], [0xEF, 0xBB], [0xEF, 0xBB, 0xBF, 0xFF],
        [0x61, 0x00, 0x62], Array("é ü 日本 😀".utf8),
        [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xE2, 0x82], [0x80],
        // U+FFFD itself is valid; an invalid byte is repaired to those same three bytes
        // by the decoding `String(utf8Text:)` compares against, so both must be told apart.
        [0xEF, 0xBF, 0xBD], [0x61, 0xEF, 0xBF, 0xBD, 0x62], [0x61, 0xFF, 0x62], [0xEF, 0xBB, 0xBF, 0xEF, 0xBF, 0xBD],
    ]

    @Test(arguments: cases) func sameAsFoundation(_ bytes: [UInt8]) {
        let ours = String(utf8Text: bytes).map { Array($0.utf8) }
        let foundation = String(bytes: bytes, encoding: .utf8).map { Array($0.utf8) }
        #expect(ours == foundation, "\(bytes)")
    }

    @Test func aLeadingMarkIsDroppedAndInvalidBytesAreNil() {
        #expect(String(utf8Text: [0xEF, 0xBB, 0xBF, 0x61]) == "a")
        #expect(String(utf8Text: [0x61, 0xC0, 0x80]) == nil)
    }
}
