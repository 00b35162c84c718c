"""
End-to-end encrypted private messages for the bundled client (docs/e2e.md):
device keys, sealed envelopes, trust on first use of contacts' keys, replay
checks, and the messenger that wires them into a session.
"""
