"""Checking a large batch of Ed25519 signatures in a helper process, beside the work that waits.

A signer whose signatures come from elsewhere (a signing service) must check
each one in software before it is used. A check costs about three times what
making a signature costs here (some 100 us), and ``cryptography`` holds the
GIL while it checks, so in a batch capture the checks of one chunk and the
capture of the next took turns on one core: half of the batch's time. A
:class:`BatchChecker` sends the (payload, signature) pairs to helper processes,
one per core (up to four), which check them on the other cores while this
process goes on.

Nothing is trusted sooner: :meth:`BatchChecker.failures` waits for every
answer, and the caller returns signatures only after it. A helper that cannot
be started, dies, or answers anything but its protocol is reported as
:class:`CheckerGone`, and the caller checks the batch itself instead.

Each helper is a fresh interpreter running only this module (``python -c``,
never a fork: other threads may hold locks; never ``multiprocessing``'s spawn,
which runs the caller's main script again in the child), so starting it costs a
tenth of a second: callers use it for batches of thousands. It ignores Ctrl-C
and hang-ups, as the batch verifier's workers do (the parent decides), and
leaves when its input closes: when the caller closes it, or when the caller
dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

from agent_rerun.errors import SignerError

#: Runs :func:`serve` isolated (``-I``: no current folder, no PYTHONPATH, no user
#: site on the path, so a ``cryptography`` planted where the user runs the command
#: cannot stand in for the real one), with the caller's own absolute path entries
#: (argv[1:]) first, so the helper imports what the caller imported.
_HELPER = ("import sys; sys.path[:0] = sys.argv[1:]; "
           "from agent_rerun.sigcheck import serve; serve()")
#: Answers the caller has not read yet wait in the helper's output pipe; past this
#: many (4 bytes each) a full pipe would block the helper while the caller blocks
#: sending it the next batch, so ``submit`` reads the oldest answer first.
_MAX_UNREAD = 1024
_COUNT = struct.Struct("<I")
_PAIR = struct.Struct("<II")
_ANSWER = struct.Struct("<i")


class CheckerGone(SignerError):
    """The helper process could not be started or stopped answering; check here instead.

    A :class:`SignerError` (exit 3) should one ever escape, though callers catch it
    and check the batch themselves."""


class BatchChecker:
    """Checks batches of signatures by one public key in helper processes, in order.

    ``submit`` sends a batch and returns once the pipes have taken it; ``failures``
    waits for the answers to all batches sent. Each batch is split between the
    helpers, so its checks run on as many cores: a single helper was the slowest
    link of a batch capture through a signing service (each helper checks about
    12,000 signatures a second; a Transit server signs about 30,000). Use it from
    one thread at a time.
    """

    def __init__(self, public_key: bytes, helpers: int | None = None) -> None:
        count = default_helpers() if helpers is None else max(1, helpers)
        self._helpers: list[_Helper] = []
        try:
            for _ in range(count):
                self._helpers.append(_Helper(public_key))
        except CheckerGone:
            self.close()
            raise
        #: Per batch not answered yet: each part's helper and its first index.
        self._batches: list[list[tuple[_Helper, int]]] = []
        #: Set when a call was cut short: some helper may owe an answer nobody
        #: expects, which the next batch would be judged by. Every later call fails.
        self._broken = False

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The helper processes (for tests that must stop one from outside)."""
        return [helper.process for helper in self._helpers]

    def submit(self, payloads: Sequence[bytes], signatures: Sequence[bytes]) -> None:
        """Send one batch to be checked (``payloads[i]`` signed by ``signatures[i]``)."""
        if len(payloads) != len(signatures):
            raise ValueError("as many signatures as payloads")
        self._usable()
        parts: list[tuple[_Helper, int]] = []
        share = -(-len(payloads) // len(self._helpers))  # ceiling: the last part is shorter
        try:
            for helper, first in zip(self._helpers, range(0, len(payloads), share or 1),
                                     strict=False):  # fewer parts than helpers: a small batch
                helper.submit(payloads[first:first + share], signatures[first:first + share])
                parts.append((helper, first))
        except BaseException:
            self._break()
            raise
        self._batches.append(parts)

    def failures(self) -> list[int]:
        """For each batch sent since the last call, in order: the index of its first
        signature that does not verify, or -1 when all of them do."""
        self._usable()
        answers = []
        try:
            while self._batches:
                failed = [first + answer for helper, first in self._batches[0]
                          if (answer := helper.answer()) >= 0]
                answers.append(min(failed, default=-1))
                self._batches.pop(0)
        except BaseException:
            self._break()
            raise
        return answers

    def _usable(self) -> None:
        if self._broken:
            raise CheckerGone("the checking processes were interrupted; check here instead")

    def _break(self) -> None:
        """A call cut short (an error, Ctrl-C): the answers owed can no longer be
        matched to their batches, so the helpers go and nothing more is answered."""
        self._broken = True
        self.close()

    def close(self) -> None:
        """Close the helpers' input (they then leave) and wait for them to end."""
        for helper in self._helpers:
            helper.close()


def default_helpers() -> int:
    """One helper per core, up to four (four check faster than a Transit server signs)."""
    return max(1, min(4, os.cpu_count() or 1))


class _Helper:
    """One helper process and its pipes: batches out, one answer per batch back."""

    def __init__(self, public_key: bytes) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if not sys.executable:
            raise CheckerGone("no Python interpreter to start a checking process with")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _HELPER, *_absolute_paths(package_parent)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                close_fds=True)
        except OSError as exc:
            raise CheckerGone(f"cannot start a checking process: {exc}") from None
        assert self.process.stdin is not None and self.process.stdout is not None
        self._input: IO[bytes] = self.process.stdin
        self._output: IO[bytes] = self.process.stdout
        self._waiting: list[int] = []  # the sizes of the batches not answered yet
        self._answers: list[int] = []  # answers read early, not yet given out
        try:
            self._send(_COUNT.pack(len(public_key)) + bytes(public_key))
        except CheckerGone:
            self.close()
            raise

    def submit(self, payloads: Sequence[bytes], signatures: Sequence[bytes]) -> None:
        parts = [_COUNT.pack(len(payloads))]
        for payload, signature in zip(payloads, signatures, strict=True):
            parts += (_PAIR.pack(len(payload), len(signature)), payload, signature)
        if len(self._waiting) - len(self._answers) >= _MAX_UNREAD:
            self._answers.append(self._next_answer())
        self._send(b"".join(parts))
        self._waiting.append(len(payloads))

    def answer(self) -> int:
        """The answer for the oldest batch not given out yet."""
        if not self._answers:
            self._answers.append(self._next_answer())
        self._waiting.pop(0)
        return self._answers.pop(0)

    def _next_answer(self) -> int:
        """Read the answer for the oldest batch not read yet."""
        data = _read_exactly(self._output, _ANSWER.size)
        if data is None:
            raise CheckerGone("the checking process stopped answering")
        answer = int(_ANSWER.unpack(data)[0])
        if not -1 <= answer < self._waiting[len(self._answers)]:  # fail closed on nonsense
            raise CheckerGone("the checking process answered outside its protocol")
        return answer

    def close(self) -> None:
        for stream in (self._input, self._output):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _send(self, data: bytes) -> None:
        try:
            self._input.write(data)
            self._input.flush()
        except (OSError, ValueError) as exc:
            raise CheckerGone(f"the checking process is gone: {exc}") from None


def _absolute_paths(first: str) -> list[str]:
    """``first``, then this process's absolute ``sys.path`` entries, each once."""
    return list(dict.fromkeys([first, *(entry for entry in sys.path if os.path.isabs(entry))]))


def first_failure(public_key: bytes, payloads: Sequence[bytes],
                  signatures: Sequence[bytes]) -> int:
    """The index of the first signature that does not verify by ``public_key``, or -1."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    for index, (payload, signature) in enumerate(zip(payloads, signatures, strict=True)):
        try:
            verifier.verify(signature, payload)
        except InvalidSignature:
            return index
    return -1


def serve() -> None:
    """The helper's loop on stdin/stdout: the public key, then batches, each answered
    with its first failure (-1: none), until its input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    public_key = _read_counted(source)
    if public_key is None:
        return
    while True:
        header = _read_exactly(source, _COUNT.size)
        if header is None:
            return
        payloads, signatures = [], []
        for _ in range(_COUNT.unpack(header)[0]):
            sizes = _read_exactly(source, _PAIR.size)
            if sizes is None:
                return
            payload_size, signature_size = _PAIR.unpack(sizes)
            payload = _read_exactly(source, payload_size)
            signature = _read_exactly(source, signature_size)
            if payload is None or signature is None:
                return
            payloads.append(payload)
            signatures.append(signature)
        try:
            answer = first_failure(public_key, payloads, signatures)
        except ValueError:  # not a public key: every batch fails
            answer = 0
        sink.write(_ANSWER.pack(answer))
        sink.flush()


def _read_counted(source: IO[bytes]) -> bytes | None:
    header = _read_exactly(source, _COUNT.size)
    return None if header is None else _read_exactly(source, _COUNT.unpack(header)[0])


def _read_exactly(source: IO[bytes], size: int) -> bytes | None:
    """``size`` bytes from ``source``, or None when it ends first."""
    data = source.read(size) if size else b""
    return data if data is not None and len(data) == size else None
