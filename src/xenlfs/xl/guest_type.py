"""`guest check` on what a guest's `type` asks of it: a kernel that can boot that way, and
no keys that only another type reads.

xl fails late and obscurely on a kernel of the wrong kind (a PV-only kernel as PVH: "can't
allocate low memory" or an ELF loader error from inside libxl), and it ignores HVM-only keys
in a PV config without a word. Both are checked here, before `xl create`.
"""

from __future__ import annotations

import os
from pathlib import Path

from xenlfs.xl import cfg, kernel_image
from xenlfs.xl.finding import Finding

# Keys only an HVM guest (one with an emulated PC and a device model) reads: xl.cfg(5)'s
# "Fully-virtualised (HVM) guest specific options" and its emulated devices.
_HVM_KEYS = """
acpi acpi_firmware acpi_laptop_slate acpi_s3 acpi_s4 apic bios bios_path_override boot
device_model_args_hvm hdtype hpet mmio_hole ms_vm_genid nographic pae rdm rtc_timeoffset
sdl serial smbios_firmware soundhw spice spice_clipboard_sharing spice_image_compression
spice_streaming_video spiceagent_mouse spicedisable_ticketing spicehost spicepasswd
spiceport spicetls_port spiceusbredirection spicevdagent stdvga timer_mode usb usbdevice
usbversion vendor_device vga videoram viridian vnc vncdisplay vnclisten vncpasswd vncunused
vncviewer vpt_align xen_platform_pci
"""
HVM_ONLY = frozenset(_HVM_KEYS.split())


def check(config: cfg.Config, kind: str, kernel: str | None) -> list[Finding]:
    """What a guest of type `kind` (pv, pvh, hvm) with this kernel has that xl will not
    boot, or will ignore."""
    found: list[Finding] = []
    if kind in ("pv", "pvh"):
        _other_types_keys(config, found, kind)
    if kernel and os.path.isfile(kernel):
        _kernel(config, found, kind, Path(kernel))
    return found


def _add(config: cfg.Config, found: list[Finding], severity: str, pos: cfg.Pos, what: str,
         fix: str) -> None:
    found.append(Finding(severity, config.path, pos.line, pos.col, what, fix))


def _other_types_keys(config: cfg.Config, found: list[Finding], kind: str) -> None:
    for name in config.values:
        if name in HVM_ONLY:
            _add(config, found, "warning", config.where(name).pos,
                 f"{name} is read only for HVM guests: xl ignores it for this {kind} guest",
                 'remove it, or make the guest HVM: type = "hvm"')


def _kernel(config: cfg.Config, found: list[Finding], kind: str, path: Path) -> None:
    pos = config.values["kernel"].pos
    try:
        image = kernel_image.read(path)
    except kernel_image.KernelImageError as e:
        _add(config, found, "warning", pos, f"cannot look inside the kernel: {e.message}",
             e.hint or "give the kernel image (bzImage or vmlinux)")
        return
    if kind == "pvh" and not image.pvh:
        _add(config, found, "error", pos,
             f"kernel {path} cannot boot as PVH: it has no PVH entry point (ELF note "
             "XEN_ELFNOTE_PHYS32_ENTRY; Linux's CONFIG_XEN_PVH)",
             "build it with PVH support: xenlfs kernel fix --role domU --type pvh"
             + (', or boot it as PV: type = "pv"' if image.pv else ""))
    elif kind == "pv" and not image.pv:
        _add(config, found, "error", pos,
             f"kernel {path} cannot boot as PV: it has no Xen PV entry point (ELF note "
             "XEN_ELFNOTE_ENTRY; Linux's CONFIG_XEN_PV)",
             "build it with PV support: xenlfs kernel fix --role domU --type pv"
             + (', or boot it as PVH: type = "pvh"' if image.pvh else ""))
