"""Token streams of a streamed response, kept inside their request.

LlamaIndex's streamed responses are lazy: the model is called only when the
caller drains ``response.response_gen``, after the query has returned. These
wrappers replace that generator: while it is drained, model calls started
by it belong to the step that returned the stream (through aitel's
:class:`~aitel.builder.ActiveRun`), and the step ends when the stream does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from aitel._safety import call_safely
from aitel.builder import ActiveRun, PacketBuilder


class StreamedText:
    """What a stream yielded, read off-thread once the stream has ended."""

    __slots__ = ("chunks", "response")

    def __init__(self, response: Any) -> None:
        self.chunks: list[Any] = []
        self.response = response

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else str(c) for c in self.chunks)


class _StreamEnd:
    """The runs a stream keeps open: the step that returned it, then the steps around it."""

    __slots__ = ("builder", "done", "output", "owners", "run_id")

    def __init__(self, builder: PacketBuilder, run_id: str, response: Any) -> None:
        self.builder = builder
        self.run_id = run_id
        self.output = StreamedText(response)
        self.owners: list[tuple[str, Any]] = [(run_id, self.output)]
        self.done = False

    def finish(self, error: BaseException | None, *, closed_early: bool = False) -> None:
        if self.done:
            return
        self.done = True
        attrs = {"stream_closed_early": True} if closed_early else None
        for run_id, output in self.owners:
            if error is not None:
                call_safely(self.builder.fail, run_id, error, outputs=output, site="stream.fail")
            else:
                call_safely(self.builder.end, run_id, output, attrs=attrs, site="stream.end")


class _Owned:
    """What both stream wrappers share: the runs they end."""

    _end: _StreamEnd

    @property
    def output(self) -> StreamedText:
        """What the stream has yielded so far."""
        return self._end.output

    @property
    def finished(self) -> bool:
        return self._end.done

    def keep_open(self, run_id: str, output: Any) -> None:
        """Also end ``run_id`` (a step around the one that returned the stream) with the stream."""
        self._end.owners.append((run_id, output))


class TokenStream(_Owned, Generator[Any, Any, None]):
    """A synchronous token generator that ends its step when exhausted."""

    def __init__(
        self, inner: Iterator[Any], builder: PacketBuilder, run_id: str, response: Any
    ) -> None:
        self._inner = inner
        self._end = _StreamEnd(builder, run_id, response)

    def send(self, value: Any) -> Any:
        end = self._end
        with ActiveRun(end.builder, end.run_id):
            try:
                if value is None or not isinstance(self._inner, Generator):
                    item = next(self._inner)
                else:
                    item = self._inner.send(value)
            except StopIteration:
                end.finish(None)
                raise
            except Exception as exc:
                end.finish(exc)
                raise
        end.output.chunks.append(item)
        return item

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        inner = self._inner
        if not isinstance(inner, Generator):
            raise typ if val is None else val
        end = self._end
        with ActiveRun(end.builder, end.run_id):
            try:
                item = inner.throw(typ, val, tb)
            except StopIteration:
                end.finish(None)
                raise
            except GeneratorExit:
                end.finish(None, closed_early=True)
                raise
            except Exception as exc:
                end.finish(exc)
                raise
        end.output.chunks.append(item)
        return item

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._end.finish(None, closed_early=True)


class AsyncTokenStream(_Owned, AsyncGenerator[Any, Any]):
    """An asynchronous token generator that ends its step when exhausted."""

    def __init__(
        self, inner: AsyncIterator[Any], builder: PacketBuilder, run_id: str, response: Any
    ) -> None:
        self._inner = inner
        self._end = _StreamEnd(builder, run_id, response)

    async def asend(self, value: Any) -> Any:
        end = self._end
        active = ActiveRun(end.builder, end.run_id)
        active.__enter__()
        try:
            if value is None or not isinstance(self._inner, AsyncGenerator):
                item = await self._inner.__anext__()
            else:
                item = await self._inner.asend(value)
        except StopAsyncIteration:
            end.finish(None)
            raise
        except Exception as exc:
            end.finish(exc)
            raise
        finally:
            active.__exit__(None, None, None)
        end.output.chunks.append(item)
        return item

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        inner = self._inner
        if not isinstance(inner, AsyncGenerator):
            raise typ if val is None else val
        end = self._end
        try:
            item = await inner.athrow(typ, val, tb)
        except StopAsyncIteration:
            end.finish(None)
            raise
        except GeneratorExit:
            end.finish(None, closed_early=True)
            raise
        except Exception as exc:
            end.finish(exc)
            raise
        end.output.chunks.append(item)
        return item

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end.finish(None, closed_early=True)
