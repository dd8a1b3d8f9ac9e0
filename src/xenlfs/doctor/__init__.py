"""Hint step 1: are the prerequisites of building and running Xen there? (`xenlfs doctor`)"""
