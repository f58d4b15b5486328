"""Recordings: storage, signed links, and the fetch flow (no Flask, no RQ)."""
