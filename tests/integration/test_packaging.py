"""An installed evledger carries its contract files: schemas, POLICY.md, PREDICATES.md, the example policy.

The wheel is built from a copy of the source (as `pip install .` would), installed into
a bare directory, and run from a directory that has nothing to do with the project, so
nothing can be found relative to the current directory or the repository. The editable
install of the development venv must see the very same files, in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from cli.demo import POLICY_FILE
from ledger.storage.migrate import migration_files

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
CONTRACT_FILES = sorted(p.name for p in SCHEMAS.iterdir() if p.suffix in {".json", ".md", ".toml"})
SOURCE = ["pyproject.toml", "README.md", "ledger", "cli", "schemas"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the directory it is installed in with `pip install --no-deps --target`)."""
    base = tmp_path_factory.mktemp("packaging")
    source, dist, target = base / "source", base / "dist", base / "target"
    source.mkdir()
    for name in SOURCE:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(dist)]
    subprocess.run(build, check=True)  # noqa: S603 - our interpreter, arguments we built
    (wheel,) = dist.glob("evidence_ledger-*.whl")
    install = [*pip, "install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True)  # noqa: S603 - our interpreter, arguments we built
    return wheel, target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with only the installed copy of the project importable ahead of the venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env["PYTHONPATH"] = str(target)
    return subprocess.run(  # noqa: S603 - our interpreter, arguments we built
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_wheel_holds_every_contract_file_every_migration_and_every_module(
    installed: tuple[Path, Path],
) -> None:
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ledger/schemas/{name}" for name in CONTRACT_FILES} <= names
    assert "ledger/schemas/policy.example.toml" in names
    assert {"ledger/schemas/POLICY.md", "ledger/schemas/PREDICATES.md"} <= names
    assert {f"ledger/storage/migrations/{name}" for name, _ in migration_files()} <= names
    # Every module of the source tree: a package missing from pyproject's list would drop silently.
    modules = {
        str(path.relative_to(ROOT))
        for package in ("ledger", "cli")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules <= names, sorted(modules - names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "schemas/"))]


def test_policy_init_and_the_contract_files_work_from_an_unrelated_directory(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, target = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run_installed(
        target,
        elsewhere,
        "-c",
        "from importlib import resources; import ledger, cli.demo, cli.policy_cmd as p;"
        "print(ledger.__file__); print(cli.demo.POLICY_FILE); print(p.POLICY_GUIDE);"
        "print(sorted(f.name for f in resources.files('ledger.schemas').iterdir()))",
    )
    assert where.returncode == 0, where.stderr
    ledger_file, policy, guide, listing = where.stdout.splitlines()
    for path in (ledger_file, policy, guide):
        assert Path(path).is_relative_to(target), path
    assert set(CONTRACT_FILES) <= set(eval(listing))  # noqa: S307 - our own printed list

    made = run_installed(target, elsewhere, "-m", "cli.main", "policy", "init")
    assert made.returncode == 0, made.stderr
    written = elsewhere / "policy.toml"
    assert written.read_text(encoding="utf-8") == (SCHEMAS / "policy.example.toml").read_text(
        encoding="utf-8"
    )
    assert f"every key is explained in {guide}" in made.stdout
    checked = run_installed(target, elsewhere, "-m", "cli.main", "policy", "check", "policy.toml")
    assert checked.returncode == 0, checked.stderr


def test_the_editable_install_reads_the_contract_files_in_place() -> None:
    contract = resources.files("ledger.schemas")
    assert Path(str(contract)).resolve() == SCHEMAS
    assert set(CONTRACT_FILES) <= {entry.name for entry in contract.iterdir()}
    assert Path(str(POLICY_FILE)).resolve() == SCHEMAS / "policy.example.toml"
