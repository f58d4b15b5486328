"""A faithful simulator of the operator's Integration API, for tests, demos and benchmarks.

It implements every documented method with the documented token rules (pair invalidation,
lifetimes, the authorization token and the on/off switch), the one-month history rule, request
hashes and the settings validation rules, plus a control API under ``/_sandbox/`` that tests use
to inject faults, move the clock and inspect what the sandbox received. One process serves many
contracts, each with its own tokens, numbers and data; operator requests reach a contract by their token.
"""

from integration.sandbox.server import SandboxServer
from integration.sandbox.state import Contract, Sandbox, SandboxConfig

__all__ = ["Contract", "Sandbox", "SandboxConfig", "SandboxServer"]
