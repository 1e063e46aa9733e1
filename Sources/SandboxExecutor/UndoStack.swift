/// What a run's teardown undoes: each set-up step that creates something pushes
/// how to remove it; ``unwind()`` runs them last-made first (a cgroup is removed
/// before the run directory that records it, the child killed before its cgroup),
/// on every path: success, error, timeout, signal.
struct UndoStack {
    private var steps: [() -> Void] = []

    /// Registers the undo of what was just made.
    mutating func push(_ step: @escaping () -> Void) { steps.append(step) }

    /// Runs every registered undo, newest first, once; the stack is empty afterwards.
    mutating func unwind() {
        while let step = steps.popLast() { step() }
    }

    var count: Int { steps.count }
}
