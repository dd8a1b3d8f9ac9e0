"""xenlfs: the LFS hint "Xen Hypervisor on LFS" as one verified, automated workflow."""

__version__ = "0.1.0"
