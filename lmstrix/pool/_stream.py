"""A stream from a pool: the server's :class:`~lmstrix.ChatStream`, plus freeing its slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Optional

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Type

    from ..client import ChatStream
    from ..types import Chunk, Completion

__all__ = ["PooledStream"]


class PooledStream(Iterator["Chunk"]):
    """Iterates a server's stream; frees the pool's slot when it ends, fails or closes."""

    def __init__(self, stream: ChatStream, release: Callable[[], None]) -> None:
        self.stream = stream
        self._release: Optional[Callable[[], None]] = release

    def __repr__(self) -> str:
        return f"<PooledStream {self.stream!r}>"

    def _done(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __iter__(self) -> PooledStream:
        return self

    def __next__(self) -> Chunk:
        try:
            return next(self.stream)
        except BaseException:  # StopIteration included: the slot is free either way
            self._done()
            raise

    def __enter__(self) -> PooledStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading, release the connection and the pool's slot."""
        try:
            self.stream.close()
        finally:
            self._done()

    def text(self) -> str:
        """Read the rest and return the whole answer text (see ``ChatStream.text``)."""
        try:
            return self.stream.text()
        finally:
            self._done()

    @property
    def completion(self) -> Completion:
        """The whole answer; reads the rest of the stream first if needed."""
        try:
            return self.stream.completion
        finally:
            self._done()
