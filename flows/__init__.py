"""Prefect flows: thin orchestration over :mod:`justering.workflow`."""
