"""Boot time is measured from the slot's own start: the OS boot on a VM (first agent start of that
boot only), the agent process elsewhere."""

from __future__ import annotations

from pathlib import Path

from runtime.agent.boot_clock import NOT_A_BOOT, seconds_to_ready


def _proc(root: Path, uptime: float, boot_id: str) -> Path:
    (root / "sys" / "kernel" / "random").mkdir(parents=True, exist_ok=True)
    (root / "uptime").write_text(f"{uptime} 12.0\n")
    (root / "sys" / "kernel" / "random" / "boot_id").write_text(boot_id + "\n")
    return root


def test_on_a_vm_the_first_start_of_each_boot_is_measured_and_restarts_are_not(tmp_path: Path) -> None:
    home = tmp_path / "state"
    proc = _proc(tmp_path / "proc", 212.5, "boot-a")
    assert seconds_to_ready("os", home, now=1000.0, process_started=990.0, proc=proc) == 212.5
    _proc(proc, 86_400.0, "boot-a")  # the agent crashed and systemd restarted it a day later
    assert seconds_to_ready("os", home, now=2000.0, process_started=1990.0, proc=proc) == NOT_A_BOOT
    _proc(proc, 190.0, "boot-b")  # evicted, deallocated, started again: the data disk kept the marker
    assert seconds_to_ready("os", home, now=3000.0, process_started=2990.0, proc=proc) == 190.0


def test_without_a_boot_id_nothing_is_measured_rather_than_a_guess(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text("500.0 1.0\n")
    assert seconds_to_ready("os", tmp_path / "state", now=10.0, process_started=1.0, proc=proc) == NOT_A_BOOT


def test_a_local_slot_counts_from_its_process_not_from_the_host(tmp_path: Path) -> None:
    proc = _proc(tmp_path / "proc", 36_000.0, "host")  # a CI machine up for ten hours
    assert seconds_to_ready("process", tmp_path / "state", now=1012.0, process_started=1000.0, proc=proc) == 12.0
