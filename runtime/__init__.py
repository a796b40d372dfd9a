"""spotkit's node runtime: the work model, the agent, engines, queue and store backends.

Everything a node does lives here; the operator CLI (`spotkit.cli`) only parses and prints.
"""

__version__ = "0.1.0"
