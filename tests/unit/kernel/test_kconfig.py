"""The Kconfig reader and explanations on a small tree written like Linux's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.kernel import check, explain, kconfig
from xenlfs.kernel.config import parse

KCONFIG = {
    "Kconfig": 'mainmenu "Test"\n\nsource "arch/$(SRCARCH)/Kconfig"\nsource "drivers/Kconfig"\n',
    "arch/x86/Kconfig": """\
menu "Processor type and features"

menuconfig HYPERVISOR_GUEST
\tbool "Linux guest support"
\thelp
\t  config NOT_A_SYMBOL is help text, as is
\t  depends on NOTHING

if HYPERVISOR_GUEST

config PARAVIRT
\tbool "Enable paravirtualization code"

config XEN
\tbool "Xen guest support"
\tdepends on PARAVIRT
\tselect XENBUS

config XEN_DOM0
\tbool "Xen Dom0 support"
\tdepends on XEN
\tdepends on ACPI && PCI

endif # HYPERVISOR_GUEST
endmenu
""",
    "drivers/Kconfig": """\
menu "Device Drivers"
config PCI
\tbool "PCI support"
config ACPI
\tbool "ACPI"
config\tXENBUS
\ttristate
\tdepends on XEN
config BRIDGE
\ttristate "Bridge" if !TINY
\tdepends on NET || NET=n
endmenu
""",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in KCONFIG.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_reads_symbols_menus_and_selects(tree: Path) -> None:
    k = kconfig.read_tree(tree)
    assert set(k.symbols) == {"HYPERVISOR_GUEST", "PARAVIRT", "XEN", "XEN_DOM0", "PCI", "ACPI",
                              "XENBUS", "BRIDGE"}
    dom0 = k.symbols["XEN_DOM0"]
    assert dom0.prompt == "Xen Dom0 support"
    assert dom0.defined_at == "arch/x86/Kconfig:19"
    assert dom0.depends == ["XEN", "ACPI && PCI", "HYPERVISOR_GUEST"]
    # Like menuconfig: an entry that plainly depends on the one before it is shown under it.
    assert dom0.location == ("Processor type and features",
                             "Linux guest support (HYPERVISOR_GUEST)",
                             "Enable paravirtualization code (PARAVIRT)",
                             "Xen guest support (XEN)")
    assert k.symbols["XENBUS"].prompt is None and k.symbols["XENBUS"].selected_by == ["XEN"]
    assert k.symbols["BRIDGE"].prompt == "Bridge"


def test_tristate_expressions(tree: Path) -> None:
    k = kconfig.read_tree(tree)
    cfg = parse("CONFIG_XEN=y\nCONFIG_PCI=m\n", "t")
    assert kconfig.evaluate("XEN && PCI", cfg, k) == 1
    assert kconfig.evaluate("XEN && !ACPI", cfg, k) == 2
    assert kconfig.evaluate("ACPI || PCI=m", cfg, k) == 2
    assert kconfig.evaluate("UNKNOWN_SYMBOL", cfg, k) == 0
    assert kconfig.evaluate("$(cc-option,-mfoo)", cfg, k) == 2  # unknown: assumed to hold
    assert kconfig.conjuncts("A && (B || C) && !D") == ["A", "( B || C )", "! D"]
    assert kconfig.positive_symbols("XEN && !PCI && ACPI=y", k) == ["XEN"]


def test_explains_the_chain_and_what_to_enable(tree: Path) -> None:
    k = kconfig.read_tree(tree)
    cfg = parse("CONFIG_HYPERVISOR_GUEST=y\nCONFIG_PCI=y\n", "t")
    why = explain.explain("XEN_DOM0", cfg, k)
    assert [u.expression for u in why.unmet] == ["XEN [=n]", "ACPI [=n]"]
    assert explain.enablers(why) == ["PARAVIRT", "XEN", "ACPI"]
    text = "\n".join(explain.render(why))
    assert "menuconfig: Processor type and features → Linux guest support" in text
    assert "needs: PARAVIRT [=n]" in text
    assert explain.explain("XEN_TMEM", cfg, k).exists is False


def test_a_symbol_the_tree_lacks_is_not_in_this_kernel(tree: Path) -> None:
    k = kconfig.read_tree(tree)
    cfg = parse("# CONFIG_PCI is not set\n", "t")
    assert check.status_of("XEN_TMEM", cfg, k) is check.Status.NOT_IN_KERNEL
    assert check.status_of("XEN_TMEM", cfg, None) is check.Status.MISSING
    assert check.status_of("PCI", cfg, k) is check.Status.MISSING
