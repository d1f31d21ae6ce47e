"""Errors raised by the analysis library.

Every error derives from :class:`AnalysisError`; the command line turns them
into messages and exit codes, the library itself never exits or prints.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "InvalidFilterError",
    "NoInputError",
    "PacketNotFoundError",
    "ReportError",
]


class AnalysisError(Exception):
    """Base class of every error the analysis raises."""


class NoInputError(AnalysisError):
    """A path does not exist, a glob matched nothing, or no packet file was found."""


class InvalidFilterError(AnalysisError, ValueError):
    """A filter value cannot be understood (bad time, bad ``key=value``, unknown status)."""


class PacketNotFoundError(AnalysisError, LookupError):
    """No packet with the requested request id (or packet id) exists in the inputs."""


class ReportError(AnalysisError):
    """A report could not be written (e.g. the output path is not writable)."""
