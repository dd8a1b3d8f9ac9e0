from __future__ import annotations

from xenlfs.rehearse import probe


def test_the_probe_joins_insserv_start_order_last_and_with_the_console():
    text = "TARGETS = a b\nINTERACTIVE = b\nb: a\n"
    assert probe.started_last(text) == ("TARGETS = a b xenlfs-rehearse\n"
                                        "INTERACTIVE = b xenlfs-rehearse\nb: a\n"
                                        "xenlfs-rehearse: a b\n")
    assert probe.started_last("TARGETS = a\n") == \
        "TARGETS = a xenlfs-rehearse\nINTERACTIVE = xenlfs-rehearse\nxenlfs-rehearse: a\n"
    assert probe.started_last("# not insserv's file\n") is None


def test_the_probe_goes_where_the_hosts_rc_looks():
    assert probe.places(True, "3")[:2] == ("etc/rc.d/init.d/xenlfs-rehearse",
                                           "etc/rc.d/rc3.d/S99xenlfs-rehearse")
    assert probe.places(False, "2")[:2] == ("etc/init.d/xenlfs-rehearse",
                                            "etc/rc2.d/S99xenlfs-rehearse")
    assert probe.runlevel("# x\nid:2:initdefault:\n") == "2" and probe.runlevel(None) == "3"
