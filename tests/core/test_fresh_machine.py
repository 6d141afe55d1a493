"""A fresh machine: targets that need Debian packages say exactly what to install (or install
them as root) instead of failing with a traceback."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEED = ROOT / "deploy" / "need-debian.sh"


def _need_as_a_user(*args: str) -> subprocess.CompletedProcess:
    """need-debian.sh run by an unprivileged user (nobody, when the tests run as root); the
    script is read from stdin, since a clone in a private temp folder is not theirs to read."""
    argv = ["bash", "-s", "--", *args]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(
        argv,
        input=NEED.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def test_a_user_without_root_is_told_the_one_apt_command_and_the_target_stops():
    result = _need_as_a_user("make stream-demo", "bash", "qm-no-such-package")
    assert result.returncode == 1
    assert "make stream-demo needs Debian packages that are not installed: qm-no-such-package" in (
        result.stderr
    )
    assert "sudo apt-get install -y --no-install-recommends qm-no-such-package" in result.stderr
    assert "Traceback" not in result.stderr


def test_installed_packages_pass_silently():
    result = subprocess.run(
        [str(NEED), "make stream-demo", "bash"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_stream_demo_run_directly_without_nginx_or_ffmpeg_says_what_to_install(
    monkeypatch, tmp_path, capsys
):
    from livecommerce.media import nginx_conf, stream_demo

    monkeypatch.setenv("PATH", str(tmp_path))  # no nginx, no ffmpeg
    monkeypatch.setattr(stream_demo.Path, "exists", lambda self: False)
    monkeypatch.setattr(nginx_conf, "MODULE", str(tmp_path / "ngx_rtmp_module.so"))
    assert stream_demo.missing_debian_packages() == ["nginx", "libnginx-mod-rtmp", "ffmpeg"]
    assert stream_demo.main() == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install -y --no-install-recommends nginx libnginx-mod-rtmp ffmpeg" in err


@pytest.mark.parametrize("target", ["stream-demo", "test-integration", "system-deps"])
def test_targets_that_need_debian_packages_check_them_first(target):
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    first_command = next(line for line in recipe.splitlines()[1:] if line.startswith("\t"))
    assert "deploy/need-debian.sh" in first_command
