"""Hint step 6: xl guest configs (read, check, write) and the guest lifecycle."""
