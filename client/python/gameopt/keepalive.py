"""Keepalive: Heartbeat calls while a worker holds a task, so that a
computation (or, with GameOptimizer, the user's own loop between two
step() calls) longer than the session's worker lease does not get the
worker dropped (SessionConfig.worker_lease_seconds; the C++ worker's
client/worker/keepalive.h does the same).

Armed from the moment a task arrives until the worker's next call goes
out; while armed, a daemon thread sends Heartbeat(session, worker) every
third of the session's lease (FIRST_INTERVAL until the first reply has said
what the lease is). A task answered faster than that costs no call at all,
and arming or disarming costs no thread wake-up either: the thread is not
notified (a notify per step cost about 0.07 ms of a 3 ms PyTorch step in
GIL hand-offs); while disarmed it looks again every interval, which is
never later than a task armed in the meantime needs it.
A server without the Heartbeat method (UNIMPLEMENTED, an older server) or a
session without a lease stops the heartbeats; other errors are ignored (the
worker's own calls report them). Thread-safe.
"""

import threading
import time

import grpc

from gameopt._stubs import pb

FIRST_INTERVAL = 2.0  # seconds: safe below the default lease (10 s)
CALL_TIMEOUT = 5.0


class Keepalive:
    def __init__(self, stub, session_id: str):
        self._stub = stub
        self._session_id = session_id
        self._cv = threading.Condition()
        self._worker_id = 0  # 0 = disarmed
        self._interval = FIRST_INTERVAL
        self._next = 0.0
        self._stopped = False
        self._disabled = False
        self.sent = 0  # heartbeats sent (tests)
        self._thread = None

    def arm(self, worker_id: int) -> None:
        """The worker holds a task as `worker_id` (0: nothing to do)."""
        with self._cv:
            if self._disabled or self._stopped or worker_id == 0:
                return
            self._worker_id = worker_id
            self._next = time.monotonic() + self._interval
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="gameopt-keepalive", daemon=True)
                self._thread.start()

    def disarm(self) -> None:
        """The worker's next call goes out (it renews the lease itself)."""
        with self._cv:
            self._worker_id = 0

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._worker_id = 0
            self._cv.notify()
        if self._thread is not None and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout=CALL_TIMEOUT + 1)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    if self._worker_id != 0 and now >= self._next:
                        break
                    # Armed: until the heartbeat is due. Disarmed: one
                    # interval, no later than a task armed meanwhile is
                    # due (arm() sets _next = its time + the interval).
                    self._cv.wait(self._next - now if self._worker_id != 0
                                  else self._interval)
                worker_id = self._worker_id
                self._next = time.monotonic() + self._interval
            try:
                reply = self._stub.Heartbeat(
                    pb.HeartbeatRequest(session_id=self._session_id,
                                        worker_id=worker_id),
                    timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    with self._cv:
                        self._disabled = True
                        self._worker_id = 0
                continue
            with self._cv:
                self.sent += 1
                lease = reply.worker_lease_seconds
                if lease <= 0:
                    self._disabled = True
                    self._worker_id = 0
                else:
                    self._interval = lease / 3.0
                    self._next = min(self._next,
                                     time.monotonic() + self._interval)
