"""Step 5 of the hint: a guest root filesystem from a snapshot (disk, LV, image or dir)."""
