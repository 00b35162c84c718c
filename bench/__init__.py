"""Benchmark harness for chatroom: load generator, baseline servers, scenarios.

Run ``python -m bench`` (or ``python -m bench --quick``); see docs/performance.md.
"""
