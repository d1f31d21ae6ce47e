"""Steps every packet passes through before any exporter sees it."""

from .base import Packet, Processor, processing_notes
from .limits import SizeLimitProcessor
from .sampling import SamplingProcessor

__all__ = ["Packet", "Processor", "SamplingProcessor", "SizeLimitProcessor", "processing_notes"]
