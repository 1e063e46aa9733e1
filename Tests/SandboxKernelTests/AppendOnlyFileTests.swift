import Foundation
import Glibc
import Testing
@testable import SandboxKernel

/// The audit log and key are checked on the descriptor that is used, not only at
/// plan time: a second hard link made between the plan and the open (it could lie in
/// a path a run can write or see) is refused with EMLINK.
@Suite struct AppendOnlyFileTests {
    @Test func aSecondLinkIsRefusedOnTheOpenFile() throws {
        let dir = NSTemporaryDirectory() + "aof-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/audit.jsonl", key = "\(dir)/key"
        FileManager.default.createFile(atPath: key, contents: Data(repeating: 1, count: 32))
        chmod(key, 0o600)
        // Control: one link each.
        _ = try AppendOnlyFile.open(log)
        _ = try AppendOnlyFile.readSecret(key, maxBytes: 4096)

        #expect(link(log, "\(dir)/log-2") == 0 && link(key, "\(dir)/key-2") == 0)
        do { _ = try AppendOnlyFile.open(log); Issue.record("a linked log was opened") } catch {
            #expect(error.errno == EMLINK && error.detail?.contains("2 hard links") == true, "\(error)")
        }
        do { _ = try AppendOnlyFile.readSecret(key, maxBytes: 4096); Issue.record("a linked key was read") } catch {
            #expect(error.errno == EMLINK, "\(error)")
        }
    }

    /// A log longer than what is read is refused, not read in part: the part read
    /// verified alone said ok for a chain whose lines after the bound were garbage
    /// (red team, session 46, at the 1 GiB bound). Control: a bound the file fits in
    /// reads it whole.
    @Test func aLogLongerThanTheBoundIsRefusedNotReadInPart() throws {
        let dir = NSTemporaryDirectory() + "aof-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/audit.jsonl"
        FileManager.default.createFile(atPath: log, contents: Data("line1\nnot a record\n".utf8))
        do {
            let part = try AppendOnlyFile.contents(of: log, maxBytes: 6)
            Issue.record("read \(part.count) bytes of a longer file")
        } catch {
            #expect(error.errno == EFBIG && error.detail?.contains("is 19 bytes") == true, "\(error)")
        }
        #expect(try AppendOnlyFile.contents(of: log, maxBytes: 19).count == 19)
    }
}
