"""How long a slot took from its start to a ready engine: the controller's boot time.

The *start* depends on what a slot is, so it is a setting (``boot_clock``), not a guess:

- ``os`` — a spot VM: the slot started when its OS booted, so the time is the OS uptime at ready. Only
  the first agent start of an OS boot is a boot; a restart (crash, ``spotkit node restart``) on a VM
  that has been up for days is not, and records nothing. The kernel's boot id, kept beside the agent's
  state, tells the two apart exactly.
- ``process`` — a local slot, a laptop, a test: the slot started with this agent process. The host's
  uptime (hours on a CI machine) says nothing about how long the slot took.
"""

from __future__ import annotations

from pathlib import Path

NOT_A_BOOT = -1.0
_PROC = Path("/proc")


def os_uptime(proc: Path = _PROC) -> float:
    """Seconds since the OS booted, or -1 when the system does not say."""
    try:
        return float((proc / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return NOT_A_BOOT


def seconds_to_ready(clock_kind: str, home: Path, now: float, process_started: float, proc: Path = _PROC) -> float:
    """Seconds from the slot's start to *now* (its engine ready); `NOT_A_BOOT` when this start was not one."""
    if clock_kind == "process":
        return max(0.0, now - process_started)
    uptime = os_uptime(proc)
    try:
        boot_id = (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return NOT_A_BOOT  # cannot tell a boot from a restart: measure nothing rather than guess
    marker = home / "last-boot-id"
    try:
        if marker.read_text().strip() == boot_id:
            return NOT_A_BOOT  # this OS boot already had its ready agent: this is a restart
    except OSError:
        pass  # no marker yet: the first start this disk has seen
    try:
        home.mkdir(parents=True, exist_ok=True)
        marker.write_text(boot_id + "\n")
    except OSError:
        return NOT_A_BOOT  # without the marker the next restart would count again
    return uptime
