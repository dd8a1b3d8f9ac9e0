from __future__ import annotations

from xenlfs.lab import lfs_files, reference


def test_cache_key_follows_every_input(monkeypatch):
    base = reference.cache_key("http://deb.debian.org/debian")
    assert base == reference.cache_key("http://deb.debian.org/debian")
    assert base != reference.cache_key("http://mirror.example/debian")
    monkeypatch.setitem(lfs_files.FILES, "etc/hostname", (0o644, "other\n"))
    assert base != reference.cache_key("http://deb.debian.org/debian")


def test_dress_as_lfs_writes_lfs_files_and_root_password(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/shadow").write_text("root:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    reference.dress_as_lfs(tmp_path)
    inittab = (tmp_path / "etc/inittab").read_text()
    assert "1:2345:respawn:/sbin/agetty --noclear tty1 9600" in inittab
    assert (tmp_path / "etc/rc.d/init.d/rc").stat().st_mode & 0o111
    assert "IFACE=eth0" in (tmp_path / "etc/sysconfig/ifconfig.eth0").read_text()
    shadow = (tmp_path / "etc/shadow").read_text().splitlines()
    assert shadow[0].split(":")[1] == reference.ROOT_PASSWORD_HASH
    assert shadow[1] == "bin:*:19000:0:99999:7:::"
