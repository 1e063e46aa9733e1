import Dispatch
import FoundationEssentials
import Glibc
import SandboxVocabulary

/// A refusal the run result lists with how often it happened.
protocol CountedRefusal: Sendable {
    var count: UInt64 { get set }
}

extension DNSRefusal: CountedRefusal {}
extension ServerNameRefusal: CountedRefusal {}

/// What the DNS stub and the server name check share: one serving thread of the
/// supervisor, which the executor stops, and the refusals it counted for the run
/// result. The thread polls `stopFD` with its sockets and returns once it is
/// readable; `stop()` returns after it has.
final class ServingLoop<Refusal: CountedRefusal>: @unchecked Sendable {
    /// Distinct kinds (the caller's key) kept for the result; further ones are only
    /// counted (`dropped`).
    static var maxKinds: Int { 256 }

    private let stopPipe: (read: OwnedFD, write: OwnedFD)
    private let served = DispatchSemaphore(value: 0)
    private let lock = Lock()
    private var started = false
    private var stopped = false
    private var kinds: [String: Refusal] = [:]
    private var order: [String] = []
    private var dropped: UInt64 = 0

    /// `subject`: what serves (for the error).
    init(subject: String) throws {
        var p: [Int32] = [-1, -1]
        // Glibc's module does not export pipe2; the child closes every descriptor but
        // 0–2 before execve, so the moment without FD_CLOEXEC leaks nothing.
        guard pipe(&p) == 0 else { throw KernelError(operation: "pipe", subject: subject, errno: errno) }
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        stopPipe = (OwnedFD(p[0]), OwnedFD(p[1]))
    }

    /// Readable once `stop()` was called: the serving loop returns when it is.
    var stopFD: Int32 { stopPipe.read.raw }

    /// Runs `serve` on a thread of its own, named `name` (once).
    func start(name: String, _ serve: @escaping @Sendable () -> Void) {
        lock.lock()
        let first = !started
        started = true
        lock.unlock()
        guard first else { return }
        Threads.detach(name: name) { [served] in serve(); served.signal() }
    }

    /// Stops serving and returns when the thread has (idempotent; at once if it was
    /// never started).
    func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        let wait = started
        lock.unlock()
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(stopPipe.write.raw, &byte, 1)
        if wait { served.wait() }
    }

    /// Counts one refusal of kind `key`; `make` is its first entry (count 1).
    func count(_ key: String, _ make: @autoclosure () -> Refusal) {
        lock.lock(); defer { lock.unlock() }
        if kinds[key] != nil {
            kinds[key]!.count += 1
        } else if kinds.count < Self.maxKinds {
            kinds[key] = make()
            order.append(key)
        } else {
            dropped += 1
        }
    }

    /// The refusals so far, most frequent first, ties by `before`; and how many were
    /// past the kinds kept.
    func refusals(tiesBy before: (Refusal, Refusal) -> Bool) -> (kinds: [Refusal], dropped: UInt64) {
        lock.lock(); defer { lock.unlock() }
        let list = order.compactMap { kinds[$0] }.sorted { $0.count != $1.count ? $0.count > $1.count : before($0, $1) }
        return (list, dropped)
    }
}
