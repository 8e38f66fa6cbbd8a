"""`evledger policy init`: writes the packaged example policy, never over a file unless told to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.policy_cmd import EXAMPLE_POLICY, POLICY_GUIDE

runner = CliRunner()
EXAMPLE = EXAMPLE_POLICY.read_text(encoding="utf-8")


def test_init_writes_the_example_to_policy_toml_and_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["policy", "init"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "policy.toml").read_text(encoding="utf-8") == EXAMPLE
    assert "wrote the example release policy to policy.toml" in result.stdout
    assert "evledger policy check policy.toml" in result.stdout
    assert "evledger policy publish policy.toml" in result.stdout
    assert str(POLICY_GUIDE) in result.stdout
    assert runner.invoke(app, ["policy", "check", str(tmp_path / "policy.toml")]).exit_code == 0


def test_init_writes_where_it_is_told_and_reports_json(tmp_path: Path) -> None:
    target = tmp_path / "release-policy.toml"
    result = runner.invoke(app, ["policy", "init", str(target), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "file": str(target), "guide": str(POLICY_GUIDE)}
    assert target.read_text(encoding="utf-8") == EXAMPLE


def test_init_refuses_to_overwrite_and_leaves_the_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "policy.toml"
    target.write_text("# my edited policy\n")
    result = runner.invoke(app, ["policy", "init", str(target)])
    assert result.exit_code == 2
    assert "already exists; refusing to overwrite it (--force replaces it)" in result.stderr
    assert target.read_text() == "# my edited policy\n"


def test_init_refuses_a_dangling_link_too(tmp_path: Path) -> None:
    target = tmp_path / "policy.toml"
    target.symlink_to(tmp_path / "nowhere.toml")
    assert runner.invoke(app, ["policy", "init", str(target)]).exit_code == 2
    assert not (tmp_path / "nowhere.toml").exists()


def test_init_force_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "policy.toml"
    target.write_text("# stale\n")
    result = runner.invoke(app, ["policy", "init", str(target), "--force"])
    assert result.exit_code == 0, result.stderr
    assert target.read_text(encoding="utf-8") == EXAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.toml"]  # no temporary file left


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_init_into_a_missing_folder_exits_2_and_writes_nothing(tmp_path: Path, force: list[str]) -> None:
    result = runner.invoke(app, ["policy", "init", str(tmp_path / "missing" / "policy.toml"), *force])
    assert result.exit_code == 2
    assert "No such file or directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_help_explains_itself() -> None:
    result = runner.invoke(app, ["policy", "init", "--help"])
    assert result.exit_code == 0
    assert "example release policy" in result.stdout
    assert "--force" in result.stdout
