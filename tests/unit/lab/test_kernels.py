"""The cached kernels' recipe key: what `kernel fix` makes a .config from."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.cli import build_parser
from xenlfs.kernel.requirements import DEFAULT_TYPES, GuestType, Role
from xenlfs.lab import kernels


def test_recipe_key_changes_with_role_and_source(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-6.1.tar.xz"
    tarball.write_bytes(b"one source")
    domu = kernels.recipe_key(tarball, Role.DOMU)
    assert kernels.recipe_key(tarball, Role.DOMU) == domu
    assert kernels.recipe_key(tarball, Role.DOM0) != domu
    tarball.write_bytes(b"another source")
    assert kernels.recipe_key(tarball, Role.DOMU) != domu


def test_lookup_finds_only_a_remembered_build_whose_image_is_there(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-6.1.tar.xz"
    tarball.write_bytes(b"one source")
    assert kernels.lookup(tmp_path, Role.DOMU, tarball=tarball) is None
    made = tmp_path / "kernel/builds/6.1.192-domU-0123456789ab"
    made.mkdir(parents=True)
    recipe = tmp_path / "kernel/builds/recipes" / kernels.recipe_key(tarball, Role.DOMU)
    recipe.parent.mkdir()
    recipe.write_text(made.name + "\n")
    assert kernels.lookup(tmp_path, Role.DOMU, tarball=tarball) is None  # no bzImage yet
    (made / "bzImage").write_bytes(b"kernel")
    assert kernels.lookup(tmp_path, Role.DOMU, tarball=tarball) == made
    # Another flavour of the same role has its own recipe.
    assert kernels.lookup(tmp_path, Role.DOMU, tarball=tarball, types=kernels.ALL_TYPES,
                          recommended=True) is None


def test_the_recipe_as_xenlfs_commands() -> None:
    tree = Path("/cache/kernel/src/linux-source-6.1-x-domU/linux-source-6.1")
    assert kernels.verbs(tree, Role.DOMU) == [
        ["kernel", "fix", "--src", str(tree), "--role", "domU", "--start", "tinyconfig",
         "--localversion=-xen-domU"],
        ["kernel", "build", "--src", str(tree), "--jobs", "2", "--nice", "19"]]
    fix_argv, _ = kernels.verbs(tree, Role.DOMU, types=kernels.ALL_TYPES, recommended=True)
    assert fix_argv[-3:] == ["--type", "pv,pvh,hvm", "--recommended"]


@pytest.mark.parametrize(("types", "recommended"),
                         [(DEFAULT_TYPES, False), (kernels.ALL_TYPES, True)])
def test_the_commands_mean_what_cached_kernel_does(types: tuple[GuestType, ...],
                                                  recommended: bool) -> None:
    # The same options cached_kernel gives fix.fix in-process, read by xenlfs's own parser:
    # both ways make one .config, so one cache directory.
    fix_argv, build_argv = kernels.verbs(Path("/t"), Role.DOMU, types=types,
                                         recommended=recommended)
    fixed = build_parser(fix_argv).parse_args(fix_argv)
    assert fixed.handler.__name__ == "fix_config"
    assert (fixed.role, fixed.start, fixed.localversion) == (
        Role.DOMU, kernels.STARTS[Role.DOMU], kernels.localversion(Role.DOMU))
    assert (tuple(fixed.types), fixed.recommended) == (types, recommended)
    assert not fixed.dry_run and not fixed.initramfs
    built = build_parser(build_argv).parse_args(build_argv)
    assert built.handler.__name__ == "build_kernel" and built.nice == 19
