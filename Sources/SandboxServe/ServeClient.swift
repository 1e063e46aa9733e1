import CSandbox
import FoundationEssentials
import Glibc
import SandboxKit

/// `sandbox exec --server PATH`: one request to a `sandbox serve`, with this
/// process's stdin, stdout and stderr, its directory (a descriptor) and environment; the reply is
/// the run's result.
public enum ServeClient {
    public struct Reply {
        /// The reply line (the RunResult with `id` and `peer`), newline included.
        public var line: [UInt8]
        public var exitCode: Int32
        /// The result's `error.message`, if the run failed.
        public var errorMessage: String?
    }

    public static func run(socket path: String, policy: String, argv: [String], cwd: String,
                           environment: [String: String], result: ResultFile?) throws(ServeError) -> Reply {
        // A closed stdin, stdout or stderr would be taken by the connection itself (or
        // the directory's descriptor), and sent as the command's: the command could then
        // send requests of its own as this client. The server refuses such a request
        // too; this says why before anything is sent.
        for (n, name) in ["stdin", "stdout", "stderr"].enumerated() where fcntl(Int32(n), F_GETFD) < 0 {
            throw ServeError("\(name) is closed: the command would get the connection to the server in its place; open it (e.g. on /dev/null)")
        }
        let fd = sbx_serve_connect(path)
        guard fd >= 0 else { throw ServeError("connect \(path): \(String(cString: strerror(-fd)))") }
        let socket = OwnedFD(fd)
        defer { socket.close() }
        // Who listens: the request carries the environment, the stdio and a
        // descriptor of the working directory, so only a server of this uid or root
        // gets them (red team, session 46: a socket another user bound in a directory
        // it could write got all three). The credentials are the listener's, as of its
        // listen().
        var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
        let got = sbx_serve_peer(fd, &uid, &gid, &pid)
        guard got == 0 else { throw ServeError("\(path): the server's credentials cannot be read: \(String(cString: strerror(-got)))") }
        guard uid == 0 || uid == geteuid() else {
            throw ServeError("\(path): the server runs as uid \(uid), neither root nor you (uid \(geteuid())); nothing was sent. Use a socket of your own server, in a directory only you can write")
        }
        // And in this PID namespace, as the server asks of its clients: a sandboxed
        // command of a rootless run is the invoker's uid on the host, and one listening
        // where the client looked got all three (red team, session 46).
        guard let ns = ownPIDNamespace() else { throw ServeError("\(path): this process's PID namespace cannot be read; nothing was sent") }
        let inNS = sbx_serve_peer_in_pidns(fd, ns.dev, ns.ino)
        guard inNS == 1 else {
            throw ServeError(inNS < 0 ? "\(path): the server's PID namespace cannot be read (\(String(cString: strerror(-inNS)))); nothing was sent"
                             : "\(path): the listener (pid \(pid)) is not in this PID namespace, as a sandboxed command is not; nothing was sent")
        }
        func q(_ s: String) -> String { CanonicalJSON.quote(s) }
        var json = "{\"id\":1,\"policy\":\(q(policy)),\"argv\":[\(argv.map(q).joinedText(separator: ","))],\"cwd\":\(q(cwd))"
        json += ",\"env\":{\(environment.sorted { $0.key < $1.key }.map { "\(q($0.key)):\(q($0.value))" }.joinedText(separator: ","))}"
        if let result { json += ",\"resultDir\":\(q(result.directory)),\"resultPath\":\(q(result.path))" }
        let request = Array((json + "}\n").utf8)
        // The fourth descriptor: this process's working directory, the inode it runs
        // in (the server never looks the path up again).
        let directory: OpenedSource
        do { directory = try MountSources.openWorkingDirectory() } catch { throw ServeError("the working directory: \(error)") }
        defer { directory.close() }
        var offset = 0
        while offset < request.count {
            // The four descriptors go with the first byte, as the protocol wants.
            let stdio: [Int32] = offset == 0 ? [0, 1, 2, directory.fd] : []
            let n = request[offset...].withUnsafeBytes { b in
                sbx_serve_send(fd, b.baseAddress, b.count, stdio, Int32(stdio.count))
            }
            guard n > 0 else { throw ServeError("send to \(path): \(String(cString: strerror(Int32(-n))))") }
            offset += n
        }
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while !line.contains(UInt8(ascii: "\n")) {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ServeError("\(path): the server closed the connection without a reply") }
            line += chunk[..<n]
        }
        line = Array(line[...line.firstIndex(of: UInt8(ascii: "\n"))!])
        guard let object = JSONTree.parse(line) as? [String: Any],
              let exit = object["exitCode"] as? Int else {
            throw ServeError("\(path): the reply is not a result")
        }
        let message = (object["error"] as? [String: Any])?["message"] as? String
        return Reply(line: line, exitCode: Int32(truncatingIfNeeded: exit), errorMessage: message)
    }

    /// The RunResult of a reply line, as `exec --result` writes it: the line without
    /// the `id` and `peer` the server puts first (`{"id":1,"peer":{…numbers…},…`).
    public static func result(of line: [UInt8]) -> [UInt8] {
        let prefix = Array("{\"id\":1,\"peer\":{".utf8)
        guard line.starts(with: prefix), let close = line[prefix.count...].firstIndex(of: UInt8(ascii: "}")),
              close + 1 < line.count, line[close + 1] == UInt8(ascii: ",") else { return line }
        return [UInt8(ascii: "{")] + line[(close + 2)...]
    }
}
