"""Compatibility package: see :mod:`justering.orchestration.flows`."""
