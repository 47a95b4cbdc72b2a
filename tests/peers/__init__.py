"""Real peers the test suite talks to over loopback (processes, not mocks)."""
