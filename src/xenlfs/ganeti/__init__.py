"""xenlfs as a Ganeti OS provider (Ganeti's OS interface, API 20).

    provider  what `xenlfs ganeti install-os` writes: ganeti_api_version, variants.list (one
              variant per snapshot), parameters.list and the thin scripts that call xenlfs
    osenv     the environment Ganeti gives an OS script, read and checked (OSP_* parameters)
    scripts   what each script does: create (step 5 onto DISK_0_PATH), rename, export,
              import (the guest's root as a snapshot-format stream), verify
"""
