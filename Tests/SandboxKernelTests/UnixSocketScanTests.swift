import Foundation
import Glibc
import SandboxKernel
import Testing

/// The walk behind the planner's search for unix sockets under `ro` binds
/// (UnixSocketScan.swift), on a real tree of bound sockets.
@Suite struct UnixSocketScanTests {
    /// A fresh directory; the caller removes it.
    static func tempDir() -> String {
        let path = NSTemporaryDirectory() + "sbx-sockscan-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A socket bound (not listening) at `path`; the fd is the caller's to close.
    static func bindSocket(_ path: String) -> Int32 { bindSocket(bytes: Array(path.utf8)) }

    static func bindSocket(bytes: [UInt8]) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(r == 0, "bind \(String(decoding: bytes, as: UTF8.self)): \(String(cString: strerror(errno)))")
        return fd
    }

    @Test func findsSocketsFollowsNoLinkAndSkips() throws {
        let d = Self.tempDir(), other = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d); try? FileManager.default.removeItem(atPath: other) }
        let fm = FileManager.default
        for sub in ["a/b/c", "skipped", "plain"] { try fm.createDirectory(atPath: "\(d)/\(sub)", withIntermediateDirectories: true) }
        fm.createFile(atPath: "\(d)/plain/file", contents: Data("x".utf8))
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for s in ["top.sock", "a/b/c/deep.sock", "skipped/hidden.sock"] { fds.append(Self.bindSocket("\(d)/\(s)")) }
        fds.append(Self.bindSocket("\(other)/elsewhere.sock"))
        // A link to a directory of sockets and a link to a socket: not followed.
        try fm.createSymbolicLink(atPath: "\(d)/dirlink", withDestinationPath: other)
        try fm.createSymbolicLink(atPath: "\(d)/socklink", withDestinationPath: "\(other)/elsewhere.sock")

        let out = UnixSocketScan.scan(roots: [d], skip: ["\(d)/skipped"], limit: 1000)
        #expect(out.incompleteRoot == nil, "\(out)")
        #expect(Set(out.sockets) == ["\(d)/top.sock", "\(d)/a/b/c/deep.sock"], "\(out.sockets)")
        #expect(out.entries >= 9, "\(out.entries)")

        // A socket as the root itself is reported; an absent root is nothing.
        let single = UnixSocketScan.scan(roots: ["\(other)/elsewhere.sock", "\(d)/absent"], skip: [], limit: 10)
        #expect(single.sockets == ["\(other)/elsewhere.sock"] && single.incompleteRoot == nil)
    }

    /// The limit and the depth stop the search with the root and the reason; it never
    /// returns a partial list as if complete.
    @Test func limitsStopTheSearch() throws {
        let d = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for i in 0..<50 { FileManager.default.createFile(atPath: "\(d)/f\(i)", contents: nil) }
        let over = UnixSocketScan.scan(roots: [d], skip: [], limit: 20)
        #expect(over.incompleteRoot == d && over.incompleteReason == "more than 20 directory entries", "\(over)")
        let within = UnixSocketScan.scan(roots: [d], skip: [], limit: 50)
        #expect(within.incompleteRoot == nil && within.entries == 50)

        try FileManager.default.createDirectory(atPath: "\(d)/1/2/3/4", withIntermediateDirectories: true)
        let deep = UnixSocketScan.scan(roots: [d], skip: [], limit: 1000, maxDepth: 3)
        #expect(deep.incompleteRoot == d && deep.incompleteReason?.contains("deeper than 3 directories") == true, "\(deep)")
    }

    /// A mask step names its target as a String: a socket whose path is not UTF-8
    /// could not be hidden, so the search stops instead of passing over it.
    @Test func aSocketNameThatIsNotUTF8StopsTheSearch() throws {
        let d = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let fd = Self.bindSocket(bytes: Array("\(d)/bad-".utf8) + [0xFF, 0xFE])
        defer { close(fd) }
        let out = UnixSocketScan.scan(roots: [d], skip: [], limit: 100)
        #expect(out.incompleteRoot == d && out.incompleteReason?.contains("not UTF-8") == true, "\(out)")
    }
}
