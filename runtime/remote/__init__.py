"""Commands on the nodes over SSH: ``spotkit node ssh|exec|logs|restart`` (and ``--all``).

Parts: `addresses` (where each node and the jump host answer), `hostkeys` (nodes publish their public
host keys to the store; known_hosts is built from them, never trusted on first use), `settings` (the
operator's SSH settings), `runner` (one command on one node: a small interface, fabric behind it),
`ssh_argv` (the system ssh for an interactive shell) and `fleet` (targets, parallel runs, the exit
rule). The CLI (spotkit/cli/node_remote_cmd.py) only parses and prints.
"""
