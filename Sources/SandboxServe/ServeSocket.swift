import CSandbox
import Glibc
import SandboxKit

/// The server's listening socket: created in a directory only its owner (or root)
/// can change, reached with no symlink on its path, never following one planted at
/// its name, removed on exit if it is still the one we made.
final class ListeningSocket {
    let fd: OwnedFD
    private let directory: OpenedSource
    private let name: String
    private let identity: (device: UInt64, inode: UInt64)
    let path: String

    /// `group`: the socket's group, mode 0660; nil: mode 0600.
    init(path: String, group: UInt32?) throws(ServeError) {
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else {
            throw ServeError("--socket \(path): an absolute path is required")
        }
        let dir = slash == path.startIndex ? "/" : String(path[..<slash])
        name = String(path[path.index(after: slash)...])
        self.path = path
        do {
            directory = try MountSources.open(.absolute(dir), optional: false)!
        } catch {
            throw ServeError("--socket \(path): the directory \(dir): \(MountSources.explain(error))")
        }
        var st = stat()
        guard fstat(directory.fd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            directory.close()
            throw ServeError("--socket \(path): \(dir) is not a directory")
        }
        // Another user who can write the directory could replace the socket (or squat
        // its name) and answer our clients: refused, /tmp included.
        let me = geteuid()
        if (st.st_uid != me && st.st_uid != 0) || st.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            directory.close()
            throw ServeError("--socket \(path): \(dir) is writable by others (owner uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8))); put the socket in a directory only you can write, e.g. $XDG_RUNTIME_DIR or /run")
        }
        // A socket left by a server that is gone (nobody accepts) is replaced; anything
        // else at the name is refused, a symlink included.
        var old = stat()
        if fstatat(directory.fd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 {
            let fdPath = "/proc/self/fd/\(directory.fd)/\(name)"
            let probe = sbx_serve_connect(fdPath)
            if probe >= 0 { Glibc.close(probe) }
            guard old.st_mode & S_IFMT == S_IFSOCK, old.st_uid == me, probe == -ECONNREFUSED else {
                directory.close()
                throw ServeError("--socket \(path): something is already there (\(probe >= 0 ? "a server answers on it" : "not a stale socket of ours")); refused")
            }
            unlinkat(directory.fd, name, 0)
        }
        let r = sbx_serve_listen(directory.fd, name, group == nil ? 0o600 : 0o660, group.map { Int($0) } ?? -1, 128)
        guard r >= 0 else {
            directory.close()
            // Only fchown gives EPERM here: the server's user is not in that group.
            if let group, r == -EPERM {
                throw ServeError("--socket \(path): fchown to group \(group) failed (\(String(cString: strerror(-r)))): the server's user must be a member of the --group")
            }
            throw ServeError("--socket \(path): bind: \(String(cString: strerror(-r)))")
        }
        fd = OwnedFD(r)
        var made = stat()
        fstatat(directory.fd, name, &made, AT_SYMLINK_NOFOLLOW)
        identity = (UInt64(made.st_dev), UInt64(made.st_ino))
    }

    /// Closes the socket and removes its name, if it still names our socket.
    func remove() {
        fd.close()
        var st = stat()
        if fstatat(directory.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0,
           UInt64(st.st_dev) == identity.device, UInt64(st.st_ino) == identity.inode {
            unlinkat(directory.fd, name, 0)
        }
        directory.close()
    }
}

/// One connection: its descriptor, its peer, the descriptors received and not yet
/// given to a request, the bytes of a line not yet complete.
final class Connection: @unchecked Sendable {
    /// Open until the last user lets go (``release(request:)``): the reader blocks in
    /// `recvmsg` on it while runs reply on it, so it is not an `OwnedFD`, whose lock
    /// would be held across the blocking call.
    let fd: Int32
    let peer: Peer
    /// Serialises replies: each is one line, written whole.
    private let writeLock = Mutex(())
    /// Runs in flight (their handles, for cancellation) and whether the client is gone.
    private let state = Mutex(State())
    private struct State {
        var runs: [Int: RunHandle] = [:]
        var next = 0
        var closed = false
        /// The reading thread and every request admitted: the last to let go closes
        /// the descriptor (a run replies on it after the reader is done).
        var users = 1
        var requests = 0
    }

    /// Runs this connection may still start (``Server/Limits/maxInFlightPerConnection``).
    let slots: DispatchSemaphore

    init(fd: Int32, peer: Peer, maxInFlight: Int) {
        self.fd = fd
        slots = DispatchSemaphore(value: maxInFlight)
        self.peer = peer
    }

    /// Sends one reply line; false when the client is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        writeLock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { b in sbx_serve_send(fd, b.baseAddress, b.count, nil, 0) }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// Whether the client is gone: its reader saw EOF, or the socket reports the
    /// peer's close (POLLHUP, POLLRDHUP) while the reader waits on back-pressure.
    var isClosed: Bool {
        if state.withLock({ $0.closed }) { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN) | 0x2000 /* POLLRDHUP */, revents: 0)
        return poll(&p, 1, 0) == 1 && p.revents & (Int16(POLLHUP) | Int16(POLLERR) | 0x2000) != 0
    }

    /// Registers a run for cancellation; nil when the client is already gone.
    func register(_ handle: RunHandle) -> Int? {
        state.withLock { s in
            if s.closed { return nil }
            s.next += 1
            s.runs[s.next] = handle
            return s.next
        }
    }

    func unregister(_ key: Int) { _ = state.withLock { $0.runs.removeValue(forKey: key) } }

    /// The client is gone: every run of this connection is cancelled (SIGKILL to its
    /// init now or as soon as it exists; teardown as for any run).
    func cancelAll() {
        let runs = state.withLock { s -> [RunHandle] in
            s.closed = true
            return Array(s.runs.values)
        }
        for r in runs { r.cancel() }
    }

    /// One more request uses the connection (it replies on it).
    func retain() {
        state.withLock { s in
            s.requests += 1
            s.users += 1
        }
    }

    /// The reader or a request is done with the connection; the last closes it.
    func release(request: Bool = true) {
        let last = state.withLock { s -> Bool in
            if request { s.requests -= 1 }
            s.users -= 1
            return s.users == 0
        }
        if last { Glibc.close(fd) }
    }
}

public struct ServeError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

import Dispatch
import Synchronization
