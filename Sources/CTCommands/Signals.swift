import Glibc
import Synchronization

// SIGINT and SIGTERM end -E and --interval's repeats with exit code 0,
// output flushed: the handler only sets a flag, which the waits check.

/// Set by the SIGINT and SIGTERM handler.
let stopRequested = Atomic<Bool>(false)

/// Installs the SIGINT and SIGTERM handler and blocks both signals on this
/// thread; returns the mask to wait with (pselect, ppoll), in which they
/// are open. A signal can thus only arrive during a wait, never between a
/// check of `stopRequested` and the wait.
func blockStopSignals() -> sigset_t {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(SIGINT, &action, nil)
    sigaction(SIGTERM, &action, nil)
    var block = sigset_t()
    sigemptyset(&block)
    sigaddset(&block, SIGINT)
    sigaddset(&block, SIGTERM)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &block, &previous)
    sigdelset(&previous, SIGINT)
    sigdelset(&previous, SIGTERM)
    return previous
}
