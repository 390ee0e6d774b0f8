"""The command line: cheap start-up, documented exit codes, masked errors."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, cli
from mlops_ci.cli.main import COMMANDS, build_parser
from mlops_ci.errors import ExitCode

HEAVY = ("mlflow", "torch", "kubernetes", "dvc", "pandas", "sklearn", "deepchecks", "github", "requests")


def test_help_imports_no_heavy_library():
    code = (
        "import sys, io, contextlib\n"
        "from mlops_ci.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "print(','.join(sorted(heavy)))\n"
        "assert 'COMMAND' in buf.getvalue()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"--help imported: {proc.stdout.strip()}"


def test_every_subcommand_help_is_cheap_too():
    for name in COMMANDS:
        code = (
            "import sys\nfrom mlops_ci.cli.main import main\n"
            f"try:\n    main([{name!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert proc.stdout.strip().splitlines()[-1] == "[]", (name, proc.stdout[-300:])


def test_every_command_is_documented_and_mutating_ones_have_dry_run():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "check", "train", "evaluate", "report", "promote", "context", "config",
                                "demo", "publish", "command", "rollback", "render", "serve", "monitor", "rollout",
                                "features"}
    for mutating in ("run", "train", "evaluate", "report", "promote", "publish", "command", "rollback", "monitor",
                     "rollout", "features"):
        opts = {o for a in sub.choices[mutating]._actions for o in a.option_strings}
        assert "--dry-run" in opts, mutating


def test_no_command_prints_usage(tmp_path):
    proc = cli(tmp_path)
    assert proc.returncode == ExitCode.USAGE
    assert "usage: mlops-ci" in proc.stderr


def test_bad_arguments_exit_2(tmp_path):
    proc = cli(tmp_path, "promote", "--model")
    assert proc.returncode == 2


def test_errors_are_masked(tmp_path):
    # a config path that contains a secret value must not leak it through the error message
    secret = "s3cr3t-token-value"
    proc = cli(tmp_path, "config", "validate", "--config", f"/nonexistent/{secret}/.mlops-ci.yaml",
               env={"MY_API_TOKEN": secret})
    assert proc.returncode == ExitCode.CONFIG
    assert secret not in proc.stderr and "***" in proc.stderr


def test_version():
    proc = subprocess.run([sys.executable, "-m", "mlops_ci", "--version"], capture_output=True, text=True)
    assert proc.stdout.startswith("mlops-ci ")


def test_a_bug_s_traceback_goes_beside_the_config_from_a_subfolder(tiny_repo, monkeypatch, capsys):
    from mlops_ci.cli.errors import handle

    sub = tiny_repo / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)

    def bug() -> int:
        raise RuntimeError("a bug on purpose")

    assert handle(bug) == ExitCode.INTERNAL
    log = tiny_repo / ".mlops-ci" / "crash.log"
    assert "RuntimeError: a bug on purpose" in log.read_text()
    assert not (sub / ".mlops-ci").exists()
    assert f"traceback in {log}" in capsys.readouterr().err
