"""The keys xl 4.17 reads from a guest config, and how it reads each (tools/xl/xl_parse.c).

xl never complains about a key it does not know: a misspelt key is silently ignored. A key
read as a number or a string is ignored (with a terse warning) when it is a list, and the
reverse; 'any' keys are read both ways.
"""

from __future__ import annotations

import difflib


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LIST = _words("""
channel device_model_args device_model_args_hvm device_model_args_pv disk dtdev iomem ioports
irqs mca_caps p9 pci pvcalls usbctrl usbdev vdispl vfb vif vif2 vkb vnuma vsnd vtpm
""")

NUMBER = _words("""
acpi acpi_laptop_slate acpi_s3 acpi_s4 altp2mhvm apic cap cpu_weight
device_model_stubdomain_override dm_restrict driver_domain e820_host extratime hap hpet latency
localtime max_event_channels max_grant_frames max_grant_version max_maptrack_frames maxmem
maxvcpus memory mmio_hole msr_relaxed nestedhvm nographic nomigrate nx oos opengl pae
pci_msitranslate pci_permissive pci_power_mgmt pci_seize period pvshim rdm_mem_boundary
rtc_timeoffset sdl shadow_memory slice spice spice_clipboard_sharing spiceagent_mouse
spicedisable_ticketing spiceport spicetls_port spiceusbredirection spicevdagent stdvga
stubdomain_memory usb usbversion vcpus videoram vkb_device vmtrace_buf_kb vnc vncdisplay
vncunused vncviewer vpmu vpt_align xen_platform_pci xend_suspend_evtchn_compat
""")

STRING = _words("""
acpi_firmware bios bios_path_override boot bootloader builder cmdline device_model
device_model_override device_model_stubdomain_seclabel device_model_user device_model_version
device_tree display extra firmware firmware_override gic_version hdtype init_seclabel kernel
keymap ms_vm_genid name on_crash on_poweroff on_reboot on_soft_reset on_watchdog passthrough
pool pvshim_cmdline pvshim_extra pvshim_path ramdisk rdm root seclabel smbios_firmware soundhw
spice_image_compression spice_streaming_video spicehost spicepasswd stubdomain_cmdline
stubdomain_kernel stubdomain_ramdisk tee type uuid vendor_device vga vnclisten vncpasswd vuart
xauthority
""")

ANY = _words("""
altp2m bootloader_args cpuid cpus cpus_soft gfx_passthru serial timer_mode tsc_mode usbdevice
viridian
""")

KNOWN = LIST | NUMBER | STRING | ANY

# on_poweroff and friends (libxl_action_on_shutdown)
ACTIONS = ("destroy", "restart", "rename-restart", "preserve", "coredump-destroy",
           "coredump-restart", "soft-reset")


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


# Every known key with one character left out → the keys it comes from, for suggest().
_BY_DELETION: dict[str, set[str]] = {}
for _key in KNOWN:
    for _short in _deletions(_key):
        _BY_DELETION.setdefault(_short, set()).add(_key)


def suggest(name: str) -> str | None:
    """The known key `name` is one slip away from (a letter missing, extra, changed or two
    swapped), or None. Costs a few lookups per letter, so 10,000 unknown keys stay cheap."""
    if name in KNOWN:
        return name
    found = set(_BY_DELETION.get(name, ()))  # a letter missing from name
    for short in _deletions(name):
        if short in KNOWN:  # one letter too many
            found.add(short)
        found |= _BY_DELETION.get(short, set())  # a letter changed, or two swapped
    # those pairs share a letter-less form but may be two slips apart: rank them as difflib
    # does (and as closely as it asks), on a handful of candidates instead of every key
    scored = [(difflib.SequenceMatcher(None, name, key).ratio(), key) for key in sorted(found)]
    best = max(scored, default=(0.0, ""), key=lambda pair: pair[0])
    return best[1] if best[0] >= 0.75 else None
