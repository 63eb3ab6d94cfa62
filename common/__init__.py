"""Plumbing shared by feeds/ and alerts/ (and the worker): errors, durations, HTTP helpers and
the SSRF guard. It imports nothing from the other packages, so both can stand on it."""
