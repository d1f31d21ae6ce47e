"""Where packets go. Each exporter encodes and sends one batch and never raises."""

from .base import EncodedPacket, Exporter, ExportResult
from .jsonl import JsonlExporter
from .memory import InMemoryExporter

__all__ = ["EncodedPacket", "ExportResult", "Exporter", "InMemoryExporter", "JsonlExporter"]
