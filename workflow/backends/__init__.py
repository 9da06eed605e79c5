"""Where evaluations run. Every backend turns failures into failed :class:`~workflow.records.Result` values."""

from workflow.backends.base import Backend, BatchSink, make_backend

__all__ = ["Backend", "BatchSink", "make_backend"]
