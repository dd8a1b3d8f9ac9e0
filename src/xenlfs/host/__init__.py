"""Step 4 on the host: GRUB entry, xencommons bootscript, xenbr0 bridge."""
