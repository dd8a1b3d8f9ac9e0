"""On the host: the GRUB entry and xencommons bootscript (step 4), the xenbr0 bridge (step 1)."""
