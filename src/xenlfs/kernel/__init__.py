"""Hint step 4: the dom0 and domU kernels — requirements, check, explain, fix, build."""
