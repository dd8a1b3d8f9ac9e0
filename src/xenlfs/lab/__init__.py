"""The QEMU lab: real Xen and a dom0 with the real xl toolstack, booted under QEMU (TCG).

images.py builds what boots, one module per artefact (xen_image.py, dom0_kernel.py,
dom0_initrd.py; apt.py the Debian versions, cache.py the keyed cache), boot.py starts QEMU and
waits for dom0, channel.py runs commands and moves files in dom0, instance.py keeps a lab up
across commands, kernels.py builds (once) the kernels the lab and CI boot.
"""
