import Foundation

/// Ends the process when one case runs longer than its bound: a hang is a finding,
/// and the case that hung is printed (seed and index) so it can be replayed.
public final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var current: (seed: UInt64, index: Int, since: UInt64)?
    private var stopped = false
    private let boundNanoseconds: UInt64

    public init(boundSeconds: Double) {
        boundNanoseconds = UInt64(boundSeconds * 1e9)
        let thread = Thread { [unowned self] in self.watch() }
        thread.stackSize = 1 << 16
        thread.start()
    }

    public func started(seed: UInt64, index: Int) {
        lock.lock(); current = (seed, index, DispatchTime.now().uptimeNanoseconds); lock.unlock()
    }

    public func finished() {
        lock.lock(); current = nil; lock.unlock()
    }

    /// Ends the watching thread.
    public func stop() {
        lock.lock(); stopped = true; lock.unlock()
    }

    private func watch() {
        while true {
            usleep(50_000)
            lock.lock()
            let c = current
            let done = stopped
            lock.unlock()
            if done { return }
            guard let c, DispatchTime.now().uptimeNanoseconds - c.since > boundNanoseconds else { continue }
            let message = "policy fuzz: HANG: seed \(c.seed) case \(c.index) ran longer than \(Double(boundNanoseconds) / 1e9) s; replay: policy-fuzz replay --seed \(c.seed) --case \(c.index)\n"
            FileHandle.standardError.write(Data(message.utf8))
            abort()
        }
    }
}
