"""Decisions and the outbound edge: watch-lists, matching, rendering, channels."""
