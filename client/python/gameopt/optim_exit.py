"""GameOptimizer's exit handling: every live optimizer leaves its session
at interpreter exit, and SIGTERM (torchrun stopping its ranks) unwinds like
an exception instead of killing the process, so `with` blocks and atexit
run."""

import atexit
import signal
import threading
import weakref

_LIVE: "weakref.WeakSet" = weakref.WeakSet()
_HANDLERS_INSTALLED = False


def _close_all():
    for opt in list(_LIVE):
        try:
            opt.close()
        except Exception:  # exiting: best effort
            pass


def _on_sigterm(signum, frame):
    # Unwinds like an exception: `with` blocks and atexit close the
    # optimizers (LeaveSession); exit status 128 + 15 as for the default.
    raise SystemExit(128 + signum)


def register_exit(opt, handle_signals: bool) -> None:
    """Closes `opt` (LeaveSession) at interpreter exit and, with
    handle_signals, on SIGTERM (turned into SystemExit)."""
    global _HANDLERS_INSTALLED
    _LIVE.add(opt)
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_close_all)
    if handle_signals and threading.current_thread() is \
            threading.main_thread():
        # SIGINT already raises KeyboardInterrupt; SIGTERM (torchrun stopping
        # its ranks) would kill us without unwinding, unless handled.
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
