"""The local fleet: a metadata service that speaks Azure's Scheduled Events API for many VMs, and a
supervisor that runs agents as those VMs — so evictions can be rehearsed on one machine."""
