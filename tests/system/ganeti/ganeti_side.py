"""Ganeti's own code, run by Debian's Python with Ganeti 3.0's tree on sys.path: the test
asks it to discover the provider, validate parameters and run the OS scripts exactly as a
node daemon does (lib/backend.py). Nothing here imitates Ganeti; it only fills in the
instance and disk objects a master would send, and points the search paths at the test's
directories. Prints one JSON object."""

import functools
import json
import subprocess
import sys

sys.path.insert(0, "/usr/share/ganeti/3.0")

from ganeti import backend, constants, errors, objects, pathutils
from ganeti.impexpd import CommandBuilder
from ganeti.serializer import PrivateDict
from ganeti.storage import filestorage


def instance(spec):
    if spec["disk_kind"] == "file":
        disk = objects.Disk(dev_type=constants.DT_FILE, logical_id=("loop", spec["disk"]))
    else:
        disk = objects.Disk(dev_type=constants.DT_BLOCK,
                            logical_id=(constants.BLOCKDEV_DRIVER_MANUAL, spec["disk"]))
    disk.size = spec.get("size_mib", 512)
    disk.mode = constants.DISK_RDWR
    disk.uuid = "disk-0-uuid"
    disk.params = dict(constants.DISK_LD_DEFAULTS[disk.dev_type])
    disk.dynamic_params = {}
    disk.name = None
    nic = objects.NIC(mac="aa:00:00:11:22:33", uuid="nic-0-uuid", ip=None, name=None,
                      nicparams={constants.NIC_MODE: constants.NIC_MODE_BRIDGED,
                                 constants.NIC_LINK: "xenbr0"}, netinfo=None)
    inst = objects.Instance(
        name=spec["name"], os=spec["os"], uuid="instance-uuid", ctime=0, mtime=0,
        primary_node="node1-uuid", secondary_nodes=[], hypervisor=constants.HT_XEN_PVM,
        # As the master sends them: the cluster's defaults filled in.
        hvparams=objects.FillDict(constants.HVC_DEFAULTS[constants.HT_XEN_PVM],
                                  spec.get("hvparams", {})),
        beparams={}, osparams=spec.get("osparams", {}),
        osparams_private=PrivateDict(spec.get("osparams_private", {})), nics=[nic],
        disks=["disk-0-uuid"])
    inst.disks_info = [disk]
    return inst


def main():
    spec = json.loads(sys.argv[1])
    pathutils.OS_SEARCH_PATH = [spec["search"]]
    pathutils.LOG_OS_DIR = spec["logs"]
    # A cluster's /etc/ganeti/file-storage-paths, for the test's own directory.
    filestorage.CheckFileStoragePathAcceptance = functools.partial(
        filestorage.CheckFileStoragePathAcceptance, _filename=spec.get("storage_paths", ""))
    action = spec["action"]
    try:
        if action == "diagnose":
            out = {"oses": [list(map(_plain, row)) for row in backend.DiagnoseOS([spec["search"]])]}
        elif action == "validate":
            out = {"valid": backend.ValidateOS(True, spec["os"], ["parameters"],
                                               spec.get("osparams", {}), False)}
        elif action == "env":
            inst = instance(spec)
            out = {"env": backend.OSEnvironment(inst, backend.OSFromDisk(inst.os))}
        elif action == "add":
            backend.InstanceOsAdd(instance(spec), spec.get("reinstall", False), 0)
            out = {"ok": True}
        elif action == "rename":
            backend.RunRenameInstance(instance(spec), spec["old_name"], 0)
            out = {"ok": True}
        elif action in ("export", "import"):
            # The command the import/export daemon runs for a script transfer, run here
            # with a file in place of the network.
            inst = instance(spec)
            mode = constants.IEM_EXPORT if action == "export" else constants.IEM_IMPORT
            env, prefix, suffix, _ = backend._GetImportExportIoCommand(
                inst, mode, constants.IEIO_SCRIPT, (inst.disks_info[0], 0))
            shell = (f"{prefix} cat > {spec['stream']}" if action == "export"
                     else f"cat {spec['stream']} {suffix}")
            # Wrapped as the daemon wraps its command (bash, errexit, pipefail).
            done = subprocess.run(CommandBuilder.GetBashCommand(shell), env=env,
                                  capture_output=True, text=True)
            out = {"returncode": done.returncode, "stderr": done.stderr, "shell": shell,
                   "env": env}
        else:
            raise SystemExit(f"unknown action {action}")
    except (errors.GenericError, backend.RPCFail) as e:
        out = {"error": str(e), "type": type(e).__name__}
    print(json.dumps(out))


def _plain(value):
    return value if isinstance(value, (str, int, bool, list, type(None))) else str(value)


if __name__ == "__main__":
    main()
