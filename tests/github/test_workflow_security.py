"""zizmor, in its default and its auditor persona, on action.yml and the reusable workflows laid out
as a repository holds them (.github/workflows/), and on the caller snippets the READMEs tell users
to copy: every finding is fixed, or suppressed in the file with a one-line reason."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conftest import ROOT

WORKFLOWS = ROOT / "workflows"
READMES = (ROOT / "README.md", WORKFLOWS / "README.md", ROOT / "action" / "README.md")
_YAML_BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)
_IGNORE = re.compile(r"#\s*zizmor:\s*ignore\[([\w-]+)\](.*)$", re.M)


def _zizmor() -> str:
    found = shutil.which("zizmor") or str(Path(__import__("sys").executable).parent / "zizmor")
    if not Path(found).exists():
        pytest.skip("zizmor is not installed (pip install zizmor)")
    return found


def snippets() -> list[tuple[str, str]]:
    """The YAML blocks of the READMEs that are whole caller workflows (they have `on:` and `jobs:`)."""
    out = []
    for readme in READMES:
        for i, block in enumerate(_YAML_BLOCK.findall(readme.read_text(encoding="utf-8"))):
            try:
                doc = YAML(typ="safe").load(block)
            except YAMLError:  # a fragment shown for one key, not a workflow to copy
                continue
            if isinstance(doc, dict) and "jobs" in doc and ("on" in doc or True in doc):
                # as a user pastes it: the placeholder becomes the commit SHA they pin
                out.append((f"{readme.parent.name}-{readme.stem}-{i}.yml",
                            block.replace("@<full commit sha>", "@" + "0123456789abcdef" * 2 + "01234567")))
    return out


def layout(tmp_path: Path, *, with_snippets: bool) -> Path:
    repo = tmp_path / "repo"
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", repo / "action.yml")
    for wf in sorted(WORKFLOWS.glob("*.yml")):
        shutil.copy(wf, workflows / wf.name)
    if with_snippets:
        for name, text in snippets():
            (workflows / f"snippet-{name}").write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing_in_the_workflows_and_the_readme_snippets(tmp_path, persona):
    repo = layout(tmp_path, with_snippets=True)
    assert len(list((repo / ".github" / "workflows").glob("snippet-*"))) >= 5  # the callers are checked too
    proc = subprocess.run([_zizmor(), "--offline", "--no-progress", f"--persona={persona}", "."], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr


def test_every_suppression_says_why():
    """A reason on the same line, or on the comment line just above it."""
    for path in [ROOT / "action.yml", *sorted(WORKFLOWS.glob("*.yml"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            match = _IGNORE.search(line)
            if match is None:
                continue
            above = lines[n - 1].strip() if n else ""
            reason = match.group(2).strip() or (above.lstrip("#").strip() if above.startswith("#") else "")
            assert len(reason) >= 10, f"{path.name}:{n + 1}: zizmor: ignore[{match.group(1)}] needs a one-line reason"
