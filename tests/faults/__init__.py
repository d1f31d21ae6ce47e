"""Fault injection with real processes on loopback (``pytest -m faults``)."""
