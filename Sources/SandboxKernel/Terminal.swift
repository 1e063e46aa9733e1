#if canImport(Glibc)
import Glibc
#endif

/// The attributes (termios) of the terminals on stdin, stdout and stderr, saved
/// before a run and put back after it: the command inherits those descriptors, and
/// without a controlling terminal (`new_session`) it can still switch echo off or the
/// line discipline to raw mode (`TCSETS`), which would outlive the run on the
/// invoker's terminal.
///
/// Restored only where it changed, and only while this process may own the
/// terminal's modes: when the terminal is not its controlling terminal (no job
/// control applies, e.g. a pty a harness made), or it is and this process group is
/// in the foreground. A run in the background of an interactive shell leaves the
/// modes to the foreground job (the shell resets them itself at its next prompt).
/// A supervisor killed with SIGKILL restores nothing.
public struct TerminalModes {
    private struct Saved {
        var fd: Int32
        var modes: termios
    }
    private var saved: [Saved] = []

    /// Nothing saved: `restore()` does nothing.
    public init() {}

    /// Saves the attributes of each distinct terminal among `fds` (by device).
    public static func save(_ fds: [Int32] = [0, 1, 2]) -> TerminalModes {
        var out = TerminalModes()
        var seen: [dev_t] = []
        for fd in fds where isatty(fd) == 1 {
            var st = stat()
            guard fstat(fd, &st) == 0, !seen.contains(st.st_rdev) else { continue }
            var t = termios()
            guard tcgetattr(fd, &t) == 0 else { continue }
            seen.append(st.st_rdev)
            out.saved.append(Saved(fd: fd, modes: t))
        }
        return out
    }

    public var isEmpty: Bool { saved.isEmpty }

    /// Puts back every saved terminal's attributes that differ now; returns how many
    /// were restored.
    @discardableResult
    public func restore() -> Int {
        var restored = 0
        for s in saved {
            var now = termios()
            guard tcgetattr(s.fd, &now) == 0 else { continue }
            if Self.same(now, s.modes) { continue }
            // Job control: a background process group of this terminal leaves its
            // modes to the foreground one (and tcsetattr would stop us with SIGTTOU).
            let fg = tcgetpgrp(s.fd)
            if fg >= 0 && fg != getpgrp() { continue }
            // Blocked anyway, so a race with a job-control change cannot stop us.
            var ttou = sigset_t(), old = sigset_t()
            sigemptyset(&ttou)
            sigaddset(&ttou, SIGTTOU)
            pthread_sigmask(SIG_BLOCK, &ttou, &old)
            var modes = s.modes
            if tcsetattr(s.fd, TCSANOW, &modes) == 0 { restored += 1 }
            pthread_sigmask(SIG_SETMASK, &old, nil)
        }
        return restored
    }

    private static func same(_ a: termios, _ b: termios) -> Bool {
        guard a.c_iflag == b.c_iflag, a.c_oflag == b.c_oflag, a.c_cflag == b.c_cflag, a.c_lflag == b.c_lflag,
              a.c_line == b.c_line, a.c_ispeed == b.c_ispeed, a.c_ospeed == b.c_ospeed else { return false }
        return withUnsafeBytes(of: a.c_cc) { x in withUnsafeBytes(of: b.c_cc) { y in x.elementsEqual(y) } }
    }
}
