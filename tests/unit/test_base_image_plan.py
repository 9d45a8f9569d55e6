"""base_image_plan is pure: validated inputs in, a deterministic mmdebstrap argv and image config out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbenv.base_image import (
    BASE_PACKAGES,
    BaseImagePlan,
    base_image_plan,
    build_base_image,
    mmdebstrap_command,
    mmdebstrap_mode,
)
from nbenv.errors import BuildError


def options(plan: BaseImagePlan, name: str) -> list[str]:
    """The values of every `--name=value` in the argv, in order."""
    prefix = f"--{name}="
    return [arg.removeprefix(prefix) for arg in plan.mmdebstrap_argv if arg.startswith(prefix)]


def labels(plan: BaseImagePlan) -> dict[str, str]:
    changes = [change.removeprefix("LABEL ") for change in plan.import_changes if change.startswith("LABEL ")]
    return {key: json.loads(value) for key, value in (change.split("=", 1) for change in changes)}


def assert_one_line_error(error: BuildError, *needles: str) -> None:
    assert "\n" not in error.message
    assert error.hint and "\n" not in error.hint
    for needle in needles:
        assert needle in error.message


def test_defaults() -> None:
    plan = base_image_plan()
    assert plan.tag == "nbenv/debian-python:bookworm"
    assert plan.suite == "bookworm"
    assert plan.packages == ("ca-certificates", "python3", "python3-venv", "tini")
    assert plan.packages == tuple(sorted(BASE_PACKAGES))


def test_extra_packages_are_added_sorted_and_deduplicated() -> None:
    plan = base_image_plan(extra_packages=["tini", "graphviz", "libgomp1", "graphviz", "g++"])
    assert plan.packages == ("ca-certificates", "g++", "graphviz", "libgomp1", "python3", "python3-venv", "tini")
    assert options(plan, "include") == [",".join(plan.packages)]


def test_the_plan_is_deterministic() -> None:
    assert base_image_plan(extra_packages=["b1", "a1"]) == base_image_plan(extra_packages=["a1", "b1"])
    assert "created" not in " ".join(base_image_plan().import_changes)


def test_argv_is_a_minbase_mmdebstrap_of_the_suite() -> None:
    plan = base_image_plan(suite="trixie")
    argv = plan.mmdebstrap_argv
    assert argv[0] == "mmdebstrap"
    assert options(plan, "variant") == ["minbase"]
    assert argv[-1] == "trixie", "the argv ends with the suite (mode and target are added at build time)"
    assert [arg for arg in argv[1:] if not arg.startswith("--")] == ["trixie"], "one positional: no mirror"
    assert options(plan, "hook-directory") == ["/usr/share/mmdebstrap/hooks/merged-usr"], "merged /usr without perl"


def test_the_user_is_created_in_the_root_filesystem_by_a_hook() -> None:
    hooks = options(base_image_plan(), "customize-hook")
    useradd = [hook for hook in hooks if "useradd" in hook]
    assert len(useradd) == 1
    words = useradd[0].split()
    assert words[:3] == ["chroot", '"$1"', "useradd"]
    assert words[-1] == "jovyan"
    for flag, value in [("--uid", "1000"), ("--gid", "100"), ("--shell", "/bin/bash")]:
        assert words[words.index(flag) + 1] == value
    assert "--create-home" in words


def test_the_host_dns_setup_and_name_are_not_baked_in() -> None:
    assert 'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' in options(base_image_plan(), "customize-hook")


def test_later_apt_installs_keep_no_deb_files() -> None:
    plan = base_image_plan()
    hooks = [hook for hook in options(plan, "customize-hook") if "Keep-Downloaded-Packages" in hook]
    assert hooks == ['printf \'APT::Keep-Downloaded-Packages "false";\\n\' > "$1/etc/apt/apt.conf.d/90nbenv-no-debs"']
    assert not any("Keep-Downloaded" in option for option in options(plan, "aptopt")), "it breaks mmdebstrap's download"


def test_docs_man_pages_and_translations_are_dropped_but_copyright_kept() -> None:
    dpkg = options(base_image_plan(), "dpkgopt")
    for path in ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*"):
        assert f"path-exclude={path}" in dpkg
    assert "path-include=/usr/share/doc/*/copyright" in dpkg
    assert dpkg.index("path-include=/usr/share/doc/*/copyright") > dpkg.index("path-exclude=/usr/share/doc/*")


def test_no_mirror_registry_or_proxy_is_written_down() -> None:
    plan = base_image_plan(extra_packages=["graphviz"])
    text = "\n".join([*plan.mmdebstrap_argv, *plan.import_changes])
    for needle in ("://", "debian.org", "docker.io", "Proxy", "proxy"):
        assert needle not in text
    assert not any(value.startswith("Acquire::http") for value in options(plan, "aptopt"))


def test_image_config() -> None:
    plan = base_image_plan(extra_packages=["graphviz"])
    assert "ENV LANG=C.UTF-8" in plan.import_changes
    assert "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in plan.import_changes
    assert 'CMD ["/bin/bash"]' in plan.import_changes
    found = labels(plan)
    assert found["nbenv.base.suite"] == "bookworm"
    assert found["nbenv.base.packages"] == "ca-certificates,graphviz,python3,python3-venv,tini"
    assert found["org.opencontainers.image.title"]
    assert "jovyan" in found["org.opencontainers.image.description"]


def test_the_command_adds_the_mode_then_suite_and_target() -> None:
    plan = base_image_plan()
    command = mmdebstrap_command(plan, mode="unshare", target=Path("/tmp/x/rootfs.tar"))
    assert command[: len(plan.mmdebstrap_argv) - 1] == list(plan.mmdebstrap_argv[:-1])
    assert command[-3:] == ["--mode=unshare", "bookworm", "/tmp/x/rootfs.tar"]


@pytest.mark.badinput
@pytest.mark.parametrize(
    "name",
    ["", "a", "Graphviz", "-rm", "--include=x", "pkg;id", "py thon", "pkg=1.0", "pkg/bookworm", "../x", "x\n", "$(id)"],
)
def test_a_bad_package_name_is_refused_by_name(name: str) -> None:
    with pytest.raises(BuildError) as caught:
        base_image_plan(extra_packages=["graphviz", name])
    assert_one_line_error(caught.value, "package name", repr(name))


def test_a_string_of_packages_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        base_image_plan(extra_packages="graphviz")


@pytest.mark.badinput
@pytest.mark.parametrize(
    "tag",
    [
        "",
        "nbenv/Debian:1",
        "Upper",
        "x:",
        "x:two words",
        "x:-dash",
        "nbenv/x@sha256:abc",
        "-x",
        "a//b",
        "a/b/",
        "x:tag;id",
        "x\n",
    ],
)
def test_a_bad_tag_is_refused_by_name(tag: str) -> None:
    with pytest.raises(BuildError) as caught:
        base_image_plan(tag=tag)
    assert_one_line_error(caught.value, "image tag", repr(tag))


@pytest.mark.parametrize(
    "tag", ["nbenv-test/debian-python:ab12", "127.0.0.1:5000/nbenv/debian-python:bookworm", "localhost/x", "x"]
)
def test_good_tags(tag: str) -> None:
    assert base_image_plan(tag=tag).tag == tag


@pytest.mark.badinput
@pytest.mark.parametrize("suite", ["", "Bookworm", "bookworm;id", "-bookworm", "bookworm main"])
def test_a_bad_suite_is_refused(suite: str) -> None:
    with pytest.raises(BuildError) as caught:
        base_image_plan(suite=suite)
    assert_one_line_error(caught.value, "suite", repr(suite))


def test_mode_is_root_for_root() -> None:
    assert mmdebstrap_mode(0, "root", "", "") == "root"


@pytest.mark.parametrize("owner", ["ana", "1001"])
def test_mode_is_unshare_with_subordinate_ids_by_name_or_uid(owner: str) -> None:
    table = f"other:100000:65536\n{owner}:165536:65536\n"
    assert mmdebstrap_mode(1001, "ana", table, table) == "unshare"


def test_without_root_or_subordinate_ids_the_hint_says_how() -> None:
    with pytest.raises(BuildError) as caught:
        mmdebstrap_mode(1001, "ana", "ana:100000:65536\n", "other:100000:65536\n")
    assert_one_line_error(caught.value, "'ana'")
    assert caught.value.hint and "usermod --add-subuids" in caught.value.hint


def test_build_without_mmdebstrap_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no mmdebstrap, no docker
    with pytest.raises(BuildError) as caught:
        build_base_image(base_image_plan(tag="nbenv-test/never-built:x"), log=lambda line: None)
    assert_one_line_error(caught.value, "mmdebstrap not found")
    assert caught.value.hint == "apt-get install mmdebstrap"
