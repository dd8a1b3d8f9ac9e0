"""The values xl 4.17 refuses, key by key: one table, as tools/xl/xl_parse.c reads each key.

Each rule takes what xl takes (the value, its operator, the guest's type and the vcpus xl
counts) and returns the problems that make xl refuse the file. The checker reports them; the
writer refuses to write them (it checks what it writes with the checker). Learnt from
xl_parse.c, libxlu_cfg.c (how a key is read as a number or a string) and libxl's generated
`*_from_string` parsers (libxl_types.idl names, compared ignoring case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xenlfs.xl import cfg, devices
from xenlfs.xl.cnum import ULONG_MAX, strtol, strtoul10


@dataclass(frozen=True)
class Problem:
    pos: cfg.Pos
    what: str
    fix: str
    severity: str = "error"  # "warning": xl takes the file but not this value


@dataclass(frozen=True)
class Context:
    """What xl knows when it reads a key: the guest's type and how many vcpus it has."""

    type: str  # pv, pvh or hvm
    max_vcpus: int  # maxvcpus, else vcpus, else 0 (xl's count before libxl's defaults)
    host_cpus: int | None = None  # bits in the host's CPU maps, when known
    host_online_cpus: int | None = None  # when known
    host_nodes: int | None = None  # NUMA nodes of the host, when known
    node_cpus: tuple[int, ...] | None = None  # each node's CPUs (a bit mask), when known


# Xen 4.17 has at most 4095 CPUs (xen/arch/Kconfig: NR_CPUS), so libxl's CPU maps hold at
# most 4096 bits: a map of only CPUs past them is empty on every host.
ANY_HOST_CPUS = 4096


def as_long(value: cfg.Value, op: str) -> int | None:
    """xlu_cfg_get_long: a single value, not added to with +=, that is wholly a number."""
    if not isinstance(value, cfg.Atom) or op == "+=":
        return None
    return strtol(value.text)


def cpu_map(text: str, limit: int, node_cpus: tuple[int, ...] | None = None
            ) -> tuple[str | None, int | None]:
    """parse_cpurange: comma-separated CPUs, ranges, node:/nodes: and ^ exclusions.
    Returns (why xl refuses it, the map of CPUs below `limit` as a bit mask; None when it
    names NUMA nodes and `node_cpus`, each node's CPUs, is not known)."""
    mask: int | None = 0
    every = (1 << limit) - 1
    for piece in (p for p in text.split(",") if p):
        negate = piece.startswith("^")
        rest = piece[1:] if negate else piece
        nodes = False
        for prefix in ("node:", "nodes:"):
            if rest.startswith(prefix):
                rest, nodes = rest[len(prefix):], True
                break
        if rest == "all":
            if negate:
                return f"'{piece}': xl cannot combine ^ and all", None
            mask = every
            continue
        a, end = strtoul10(rest, 0)
        if a is None or a == ULONG_MAX:
            return f"'{piece}' is not a CPU number or range", None
        b: int | None = a
        if end < len(rest) and rest[end] == "-":
            b, end = strtoul10(rest, end + 1)
            if b is None or b == ULONG_MAX or b < a:
                return f"'{piece}' is not a CPU range (FIRST-LAST, FIRST <= LAST)", None
        if end != len(rest):
            return f"'{piece}' is not a CPU number or range", None
        if mask is None or b is None or (nodes and node_cpus is None):
            mask = None
            continue
        if nodes and node_cpus is not None:
            bits = 0
            for cpus_of_node in node_cpus[a:b + 1]:  # a node the host lacks has no CPU
                bits |= cpus_of_node
        else:
            bits = ((1 << (min(b, limit - 1) + 1)) - (1 << a)) if a < limit else 0
        mask = mask & ~bits if negate else mask | bits
    return None, mask


CPU_FIX = ('write CPUs as "2", "0-3", "0-3,^1", "node:0" or "all" (a list gives one such '
           'string per vcpu)')


def cpus(key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
    """cpus and cpus_soft: a string for every vcpu, or a list with one string per vcpu (xl
    reads as many items as it counts vcpus, and stops at an inner list). Every vcpu's hard
    affinity (cpus) must keep a CPU the host has, or xl refuses to start the guest."""
    limit = ctx.host_cpus or ANY_HOST_CPUS
    if isinstance(value, cfg.Atom):
        why, _ = cpu_map(value.text, limit, ctx.node_cpus)
        if why:
            return [Problem(value.pos, f"{key} = \"{value.text}\": {why}", CPU_FIX)]
        maps = [value] if ctx.max_vcpus > 0 else []  # the same map for every vcpu
    else:
        maps = []
        for item in value.items[:max(ctx.max_vcpus, 0)]:
            if not isinstance(item, cfg.Atom):
                # xl leaves the maps of the vcpus after it unset, and crashes freeing them
                return [Problem(item.pos, f"{key}: a list inside the list, where vcpu "
                                f"{len(maps)}'s CPUs belong (xl crashes on it)", CPU_FIX)]
            maps.append(item)
    out = []
    for n, item in enumerate(maps):
        why, mask = cpu_map(item.text, limit, ctx.node_cpus)
        if why:
            out.append(Problem(item.pos, f"{key}: {why}", CPU_FIX))
        elif key == "cpus" and mask == 0:
            where = f"the {limit} CPUs of this host" if ctx.host_cpus else "any host"
            out.append(Problem(item.pos, f"{key} = \"{item.text}\" leaves vcpu {n} no CPU of "
                               f"{where}: xl refuses to start it", CPU_FIX))
    return out


def choose(key: str, names: tuple[str, ...], *, ignore_case: bool = True,
           numbers: range | None = None, hvm_only: bool = False,
           pv_refused: bool = False) -> Callable[[str, cfg.Value, str, Context], list[Problem]]:
    """A key xl reads as one of `names` (libxl's from_string ignores case; xl's own strcmp
    does not), or, with `numbers`, first as a number in that range (the deprecated form)."""
    shown = ", ".join(n for n in names if n != "unknown")

    def rule(_key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
        if (hvm_only and ctx.type != "hvm") or not isinstance(value, cfg.Atom):
            return []
        if pv_refused and ctx.type == "pv":
            return [Problem(value.pos, f"{key} is not supported for PV guests: xl refuses it",
                            f"remove {key}, or make the guest type = \"hvm\"")]
        n = as_long(value, op)
        if numbers is not None and n is not None:
            if n in numbers:
                return []
            return [Problem(value.pos, f"{key} = {n} is out of range",
                            f"write one of: {shown}")]
        text = value.text.lower() if ignore_case else value.text
        if text in names:
            return []
        return [Problem(value.pos, f"unknown {key} '{value.text}'", f"{key} is one of: {shown}")]
    return rule


def string_list(key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
    """xlu_cfg_get_list_as_string_list without a fallback: a single string is refused."""
    if isinstance(value, cfg.Atom):
        return [Problem(value.pos, f"{key} must be a list: xl refuses a single string "
                        "(\"Unable to parse\")", f'write {key} = [ "ARG", "ARG" ], one item '
                        "per argument")]
    return []


VIRIDIAN = ("base", "freq", "time_ref_count", "reference_tsc", "hcall_remote_tlb_flush",
            "apic_assist", "crash_ctl", "synic", "stimer", "hcall_ipi", "ex_processor_masks",
            "no_vp_limit", "cpu_hotplug")


def viridian(key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
    """HVM: a number (on/off), or a list of enlightenments: all, defaults, NAME or !NAME."""
    if ctx.type != "hvm" or not isinstance(value, cfg.List):
        return []
    fix = f"the enlightenments are all, defaults, {', '.join(VIRIDIAN)}, each may be !NAME"
    for item in value.items:
        if not isinstance(item, cfg.Atom):
            return [Problem(item.pos, "viridian: a list inside the list (xl crashes on it)",
                            fix)]
        name = item.text.removeprefix("!") if item.text not in ("all", "defaults") else None
        if name is not None and name.lower() not in VIRIDIAN:
            return [Problem(item.pos, f"unknown viridian enlightenment '{name}'", fix)]
    return []


def mmio_hole(key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
    """HVM: the MMIO hole below 4 GiB, in MiB: 256 to 3840 (xl checks the size in bytes,
    computed in 64 bits)."""
    n = as_long(value, op) if ctx.type == "hvm" else None
    if n is None:
        return []
    size = n * 1024 * 1024 % (1 << 64)
    if 0x10000000 <= size <= 0xF0000000:
        return []
    return [Problem(value.pos, f"mmio_hole = {n} MiB is out of range",
                    "give 256 to 3840 (MiB), or leave it out")]


def rdm_taken(text: str) -> bool:
    """Whether xlu_rdm_parse accepts "strategy=host[,policy=P]". By a slip in 4.17 it
    refuses every valid policy= (it tests the policy parser's 0 for success as failure) and
    takes an unknown one; xl then ignores the whole setting, with a message."""
    buf, state, tok, ptr = text + "\0", "type", 0, 0
    while ptr < len(buf):
        c = buf[ptr]
        if state == "type" and c == "=":
            key = buf[tok:ptr]
            if key not in ("strategy", "policy"):
                return False
            state, tok = key, ptr + 1
        elif state in ("strategy", "policy") and c in ",\0":
            word = buf[tok:ptr]
            if state == "strategy" and word != "host":
                return False
            if state == "policy" and word.lower() in devices.RDM_POLICIES:
                return False
            state, tok = "type" if c == "," else "end", ptr + 1
        ptr += 1
    return tok == ptr and state == "end"


def rdm(key: str, value: cfg.Value, op: str, ctx: Context) -> list[Problem]:
    if not isinstance(value, cfg.Atom):
        return []
    if rdm_taken(value.text):
        if "policy=" not in value.text:
            return []
        return [Problem(value.pos, f"rdm = \"{value.text}\": xl takes the strategy but not "
                        "this unknown policy", "policies are strict and relaxed; give them per "
                        'device: pci = [ "...,rdm_policy=relaxed" ]', "warning")]
    return [Problem(value.pos, f"xl 4.17 ignores rdm = \"{value.text}\" (its parser takes only "
                    "strategy=host, and refuses any valid policy=)", 'write rdm = '
                    '"strategy=host" and give the policy per device: pci = [ "...,rdm_policy='
                    'relaxed" ]', "warning")]


Rule = Callable[[str, cfg.Value, str, Context], list[Problem]]

RULES: dict[str, Rule] = {
    "cpus": cpus,
    "cpus_soft": cpus,
    "tsc_mode": choose("tsc_mode", ("default", "always_emulate", "native", "native_paravirt"),
                       numbers=range(0, 4)),
    "timer_mode": choose("timer_mode", ("unknown", "delay_for_missed_ticks",
                                        "no_delay_for_missed_ticks", "no_missed_ticks_pending",
                                        "one_missed_tick_pending"),
                         numbers=range(0, 4), pv_refused=True),
    "altp2m": choose("altp2m", ("disabled", "mixed", "external", "limited"),
                     numbers=range(0, 4)),
    "passthrough": choose("passthrough", ("default", "disabled", "enabled", "sync_pt",
                                          "share_pt")),
    "vuart": choose("vuart", ("unknown", "sbsa_uart")),
    "gic_version": choose("gic_version", ("default", "v2", "v3")),
    "tee": choose("tee", ("none", "optee")),
    "device_model_version": choose("device_model_version", ("qemu-xen-traditional",
                                                            "qemu-xen"), ignore_case=False),
    "bios": choose("bios", ("unknown", "rombios", "seabios", "ovmf"), hvm_only=True),
    "hdtype": choose("hdtype", ("ide", "ahci"), hvm_only=True),
    "vga": choose("vga", ("stdvga", "cirrus", "none", "qxl"), ignore_case=False,
                  hvm_only=True),
    # a number turns it on or off; a string names the kind
    "gfx_passthru": choose("gfx_passthru", ("default", "igd"),
                           numbers=range(-(1 << 63), 1 << 63), hvm_only=True),
    "viridian": viridian,
    "mmio_hole": mmio_hole,
    "ms_vm_genid": choose("ms_vm_genid", ("generate", "none"), ignore_case=False,
                          hvm_only=True),
    "vendor_device": choose("vendor_device", ("none", "xenserver"), hvm_only=True),
    "rdm": rdm,
    "device_model_args": string_list,
    "device_model_args_pv": string_list,
    "device_model_args_hvm": string_list,
}


@dataclass(frozen=True)
class Vnuma:
    problems: list[Problem]
    vcpus: int | None = None  # xl's vcpu count once it has read a non-empty vnuma list
    memkb: int | None = None  # the sizes' sum, which xl takes as maxmem


def _parse_ulong(text: str) -> int | None:
    """xl's parse_ulong: strtoul base 10, a number must start the text (the rest may be
    anything); ULONG_MAX counts as a failure."""
    n, _ = strtoul10(text, 0)
    return None if n is None or n == ULONG_MAX else n


def vnuma(config: cfg.Config, ctx: Context) -> Vnuma:
    """parse_vnuma_config: a list of vnodes, each a list of "pnode=N", "size=MiB",
    "vcpus=RANGES", "vdistances=N,N" strings. maxmem, when given, must equal the sizes' sum;
    maxvcpus, when given, the vcpus' count (else the host must have that many CPUs)."""
    value = config.values.get("vnuma")
    if not isinstance(value, cfg.List) or not value.items:
        return Vnuma([])
    fix = ('write vnuma = [ [ "pnode=0", "size=512", "vcpus=0-1" ], ... ], sizes in MiB '
           "adding up to maxmem")
    out: list[Problem] = []
    vcpus = memkb = 0
    for node in value.items:
        if not isinstance(node, cfg.Atom):
            for item in node.items:
                if not isinstance(item, cfg.Atom):
                    continue
                parts = [p for p in item.text.split("=") if p]
                if len(parts) < 2:
                    return Vnuma([Problem(item.pos, f"vnuma: '{item.text}' is not "
                                          "OPTION=VALUE", fix)])
                option, text = parts[0].strip(" \t\n\v\f\r"), parts[1].strip(" \t\n\v\f\r")
                if option in ("pnode", "size"):
                    n = _parse_ulong(text)
                    if n is None:
                        return Vnuma([Problem(item.pos, f"vnuma: {option}={text} is not a "
                                              "number", fix)])
                    if option == "pnode" and ctx.host_nodes is not None \
                            and n >= ctx.host_nodes:
                        out.append(Problem(item.pos, f"vnuma: pnode {n}: the host has "
                                           f"{ctx.host_nodes} NUMA node(s)", fix))
                    if option == "size":
                        memkb = (memkb + (n << 10)) % (1 << 64)
                elif option in ("vcpus", "vdistances") and not [p for p in text.split(",")
                                                                if p]:
                    return Vnuma([Problem(item.pos, f"vnuma: {option}= lists nothing (xl "
                                          "crashes on it)", fix)])
                elif option == "vcpus":
                    vcpus += _range_count(text)
                elif option == "vdistances":
                    for distance in (d for d in text.split(",") if d):
                        if _parse_ulong(distance) is None:
                            return Vnuma([Problem(item.pos, f"vnuma: distance '{distance}' "
                                                  "is not a number", fix)])
        else:
            return Vnuma([Problem(node.pos, "vnuma: each vnode is a [list] of "
                                  "\"OPTION=VALUE\" strings", fix)])
    maxvcpus = config.values.get("maxvcpus")
    given = as_long(maxvcpus, config.ops["maxvcpus"]) if maxvcpus else None
    if given:
        if given != vcpus:
            out.append(Problem(value.pos, f"vnuma gives {vcpus} vcpus but maxvcpus is {given}",
                               "make maxvcpus the count of the vnodes' vcpus"))
    elif ctx.host_online_cpus is not None and ctx.host_online_cpus < vcpus:
        out.append(Problem(value.pos, f"vnuma gives {vcpus} vcpus, more than the host's "
                           f"{ctx.host_online_cpus} CPUs", "set maxvcpus to allow it"))
    maxmem = config.values.get("maxmem")
    mem = as_long(maxmem, config.ops["maxmem"]) if maxmem else None
    if mem is not None and mem * 1024 % (1 << 64) != memkb:
        out.append(Problem(value.pos, f"vnuma sizes add up to {memkb >> 10} MiB but maxmem is "
                           f"{mem} MiB", "make maxmem the sum of the vnodes' sizes"))
    return Vnuma(out, given or vcpus, memkb)


def _range_count(text: str) -> int:
    """How many vcpus xl counts for "vcpus=A-B,C": parse_range's failures are not checked,
    so whatever it leaves in its two numbers is counted."""
    count = 0
    for piece in (p for p in text.split(",") if p):
        a, end = strtoul10(piece, 0)
        a = a or 0
        b = a
        if end < len(piece) and piece[end] == "-":
            b = strtoul10(piece, end + 1)[0] or 0
        if b >= a:
            count += b - a + 1
    return count


def vnc_display(config: cfg.Config, ctx: Context) -> list[Problem]:
    """HVM: a display in vnclisten (HOST:DISPLAY) and vncdisplay both: xl refuses."""
    listen, display = config.values.get("vnclisten"), config.values.get("vncdisplay")
    if ctx.type != "hvm" or not isinstance(listen, cfg.Atom) or display is None \
            or ":" not in listen.text or not as_long(display, config.ops["vncdisplay"]):
        return []
    return [Problem(display.pos, "the VNC display is given twice: in vnclisten "
                    f"(\"{listen.text}\") and in vncdisplay", "keep one of them")]


def problems(config: cfg.Config, ctx: Context) -> list[Problem]:
    """Every value in `config` that xl refuses, by the table."""
    out = vnc_display(config, ctx)
    for key, rule in RULES.items():
        value = config.values.get(key)
        if value is not None:
            out.extend(rule(key, value, config.ops[key], ctx))
    for key in (*devices.LISTS, "vsnd"):
        value = config.values.get(key)
        if value is not None:
            out.extend(Problem(pos, why, devices.FORMS[key])
                       for pos, why in devices.problems(key, value, ctx.type))
    return out
