"""The project's own error types.

SDK and library exceptions are mapped to these at the boundary (queue, store, media, engine), so the
agent and the CLI deal with one vocabulary and every message can say what to do next. Each error
says of what *kind* it is: ``transient`` (a retry of the same call may succeed: a network fault,
throttling, an outage) or not (bad input, bad work, a missing object, a refused credential). Retries
and poisoning decide by that kind (`runtime.retry`), never by the message's text.
"""


class SpotkitError(Exception):
    """Base class; the CLI prints ``str(err)`` as a one-line error and exits non-zero."""

    transient = False

    def __init__(self, *args: object, transient: bool | None = None) -> None:
        super().__init__(*args)
        if transient is not None:
            self.transient = transient


class ConfigError(SpotkitError):
    """A setting is missing or malformed; the message names the key and the fix."""


class MediaError(SpotkitError):
    """An input file cannot be decoded into audio (missing, empty, not media, truncated)."""


class QueueError(SpotkitError):
    """The queue backend failed in a way a retry may fix (network, throttling, locked database)."""

    transient = True


class LeaseLost(QueueError):
    """The pop receipt is stale: another consumer holds the message now, or it was deleted.

    The holder of a stale receipt must not delete or requeue the message; any result it produced was
    written write-if-absent, so nothing is lost or duplicated.
    """

    transient = False


class StoreError(SpotkitError):
    """The store backend failed (transient unless the backend says otherwise: a refused credential)."""

    transient = True


class NotFound(StoreError):
    """No object under that key."""

    transient = False


class EngineError(SpotkitError):
    """An engine could not process a batch; the segments go back to the queue with this reason.

    ``kind`` names the failure for people and metrics (``auth``, ``rate_limited``, ``transient``,
    ``bad_request``, ``malformed``; empty for the engine's own failures)."""

    def __init__(self, *args: object, kind: str = "", transient: bool | None = None) -> None:
        super().__init__(*args, transient=transient)
        self.kind = kind


class BadMessage(SpotkitError):
    """A queue message cannot be understood; retrying will not help, so it is poisoned at once."""


class RemoteError(SpotkitError):
    """A command over SSH on a node got no exit status of its own (`runtime.remote`).

    ``kind`` says why, for people and for ``--json``: ``unreachable`` and ``timeout`` (transient: the
    node may be booting or deallocated), ``host-key`` (no published key, or the node showed another
    one: refused, never retried), ``auth`` (the key was refused), ``config`` (no address, no key file,
    a bad setting), ``store`` (the store could not be read), ``protocol`` (the SSH conversation
    broke). The CLI exits 255 for all of them, as ssh does, so a remote command's own status
    (0..254) stays readable."""

    exit_code = 255

    def __init__(self, *args: object, kind: str, transient: bool | None = None) -> None:
        super().__init__(*args, transient=(kind in ("unreachable", "timeout", "protocol"))
                         if transient is None else transient)
        self.kind = kind
