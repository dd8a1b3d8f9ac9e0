"""What the rehearsal tells the user: the plan (--dry-run), each phase with its time, and on
failure the phase, the serial log lines that show it and the fix as a command."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from xenlfs import files
from xenlfs.rehearse import flow, image
from xenlfs.rehearse.layout import MiB


def layout_lines(p: flow.Plan) -> list[str]:
    lay = p.layout
    lines = [f"disk /dev/{lay.disk} ({lay.bus}), dos partition table, BIOS GRUB:"]
    for v in lay.volumes:
        ids = " ".join(x for x in (f"UUID={v.uuid}" if v.uuid else "",
                                   f"LABEL={v.label}" if v.label else "") if x)
        what = "the host's files" if v.content else "empty"
        size = f"{v.size // MiB} MiB" if v.size else "sized from the files"
        lines.append(f"  {lay.device(v):<16} {v.mountpoint:<8} {v.fstype:<5} {ids or '(new ids)'}"
                     f"  {what}, {size}  (fstab: {v.spec})")
    if lay.extended is not None:
        lines.append(f"  {lay.node(lay.extended):<16} extended: holds the logical partitions "
                     f"(a number fstab does not name: {image.PLACEHOLDER // MiB} MiB, "
                     "unformatted)")
    lines += [f"  not rehearsed: {why}" for why in lay.not_rehearsed]
    return lines


def plan_text(p: flow.Plan) -> str:
    r = p.request
    what = {"running": "the running root (/, with snapshot create's excludes)",
            "root": f"the tree {r.path} (with snapshot create's excludes)",
            "snapshot": f"the snapshot {r.path}"}[r.source]
    out = [f"rehearse {what}", f"entry: {p.entry.label}: Xen {p.entry.xen}, dom0 kernel "
           f"{p.entry.kernel}", *layout_lines(p), "changed in the copy only:",
           *(f"  {c}" for c in p.copy_changes()),
           f"guests: {', '.join(g.name for g in p.guests) or 'none'}; bridges: "
           f"{', '.join(p.bridges) or 'none'}",
           "phases watched on the serial console (deadline after the one before):",
           *(f"  {ph.name:<36} {ph.deadline:5.0f} s" for ph in p.phases),
           "boot: " + " ".join(flow.qemu_argv(p, Path("WORK/host.img"),
                                              Path("WORK/serial.log"))),
           "", files.unified_diff(f"/{flow.GRUB_CFG} (copy)", p.grub_before, p.grub_after)]
    return "\n".join(out)


def outcome_text(p: flow.Plan, o: flow.Outcome, work: Path, kept: bool) -> str:
    lines = [f"rehearsal of entry {p.entry.label}: "
             f"{'every phase passed' if o.ok else 'FAILED'} in {o.seconds:.0f} s of boot"]
    for row in o.phases:
        at = row["at"]
        mark = {"passed": "ok  ", "implied": "ok  ", "failed": "FAIL",
                "not reached": "    "}[str(row["status"])]
        when = f"{at:6.1f} s" if isinstance(at, float) else f"{row['status']:>8}"
        lines.append(f"  {mark} {row['name']:<36} {when}")
    failed_scripts = [what for what, status in o.bootscripts if status != "OK"]
    lines.append(f"bootscripts: {sum(s == 'OK' for _, s in o.bootscripts)} OK, "
                 f"{len(failed_scripts)} not OK" + "".join(f"\n  {s}" for s in failed_scripts))
    if o.diagnosis:
        d = o.diagnosis
        lines += [f"phase '{d.name}' failed: {d.diagnosis}", "serial log:",
                  *(f"  | {line}" for line in d.lines), f"fix: {d.fix}"]
    lines.append("changed in the copy only (the host was not written):")
    lines += [f"  {c}" for c in p.copy_changes()]
    if kept:
        lines.append(f"kept: {work / 'host.img'} and the logs in {work}")
    elif not o.ok:
        lines.append(f"serial log: {o.serial_log}")
    return "\n".join(lines)


def as_json(p: flow.Plan, o: flow.Outcome | None, work: Path | None, kept: bool
            ) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": {"kind": p.request.source, "path": str(p.request.path)},
        "entry": {"title": p.entry.title, "id": p.entry.id, "xen": p.entry.xen,
                  "kernel": p.entry.kernel},
        "layout": {"bus": p.layout.bus, "disk": f"/dev/{p.layout.disk}",
                   "volumes": [{**dataclasses.asdict(v), "device": p.layout.device(v)}
                               for v in p.layout.volumes],
                   "extended": p.layout.extended,
                   "not_rehearsed": list(p.layout.not_rehearsed)},
        "copy_changes": p.copy_changes(),
        "guests": [g.name for g in p.guests], "bridges": list(p.bridges),
        "memory_mib": p.memory_mib,
    }
    if o is None:
        data["plan_only"] = True
        data["grub_cfg_diff"] = files.unified_diff(f"/{flow.GRUB_CFG}", p.grub_before,
                                                   p.grub_after)
        return data
    data.update(ok=o.ok, seconds=round(o.seconds, 1), phases=o.phases,
                bootscripts=[{"what": w, "status": s} for w, s in o.bootscripts],
                probe=o.probe_lines,
                failure=dataclasses.asdict(o.diagnosis) if o.diagnosis else None,
                image=str(work / "host.img") if kept and work else None,
                serial_log=str(o.serial_log) if (kept or not o.ok) else None,
                image_size_mib=image.image_size(p.layout) // MiB)
    return data
