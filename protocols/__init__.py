"""Pure, sans-I/O protocol core of meshnode.

Data and ``now`` go in, commands come out. Nothing here reads a clock, touches a socket,
imports an async framework or uses the module-level ``random``: callers pass epochs, times
and a ``random.Random``. Both drivers (``meshnode`` over py-libp2p and ``sim`` in virtual
time) run exactly this code.
"""
