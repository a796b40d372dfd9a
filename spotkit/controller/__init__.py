"""The cost controller: observe the queue and the slots, decide with `policies.scaling`, start and
deallocate slots (`slots`: Azure VMs or the local fleet), and audit every decision in the store."""
