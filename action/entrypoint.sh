#!/usr/bin/env bash
# Entry script of the mlops-ci composite action (action.yml).
#
# Every input arrives as an environment variable (INPUT_COMMAND, INPUT_CONFIG, INPUT_MODEL,
# INPUT_WORKING_DIRECTORY, INPUT_ARGS) and is only ever used as one element of an argument
# array, never evaluated. INPUT_ARGS is split on whitespace by `read -ra`: no quotes, globs or
# expansions are interpreted, so an argument that contains a space cannot be passed.
#
# Outputs (written to $GITHUB_OUTPUT): verdict, report-path, record-path. The report is also
# appended to the job summary ($GITHUB_STEP_SUMMARY). `publish` and `command` write their own
# outputs (publish: also comment-url and the summary; command: accepted, action, env, nodes,
# gpus, pr, head-sha, head-repository, fork, version), so this script leaves both alone for them.
# The exit code is mlops-ci's (1 when the verdict is fail).
set -euo pipefail

# GitHub caps a step summary at 1 MiB; leave room for the truncation note.
readonly SUMMARY_LIMIT=1000000

command="${INPUT_COMMAND:-run}"
config="${INPUT_CONFIG:-}"
model="${INPUT_MODEL:-}"
workdir="${INPUT_WORKING_DIRECTORY:-.}"

case "$command" in
  run | check | train | evaluate | report | publish | promote | rollback | rollout | command | context | config) ;;
  *)
    echo "::error title=mlops-ci::unknown command in the 'command' input; use one of: run, check, train, evaluate, report, publish, promote, rollback, rollout, command, context, config"
    exit 2
    ;;
esac

cd -- "${workdir:-.}"

# Extra arguments: all lines joined, then split on whitespace.
extra=()
args="${INPUT_ARGS:-}"
args="${args//$'\r'/ }"
args="${args//$'\n'/ }"
read -ra extra <<<"$args"

argv=("$command" ${extra[@]+"${extra[@]}"})

# --config and --model go after the extra arguments, so that `config validate` and `rollout
# advance|status|abort` keep their action first (argparse takes a positional action before or
# after options, but the first word of `args` is the action the workflows check). Commands that
# do not take them get a notice instead of an argparse error.
takes_config=false
takes_model=false
case "$command" in
  run | check | train | evaluate | promote | rollback | rollout) takes_config=true takes_model=true ;;
  command) takes_config=true takes_model=true ;;
  context) takes_config=true ;;
  config) [[ "${extra[0]:-}" == validate ]] && takes_config=true ;;
esac
if [[ -n "$config" ]]; then
  if $takes_config; then
    argv+=(--config "$config")
  else
    echo "::notice title=mlops-ci::the 'config' input is ignored by this command"
  fi
fi
if [[ -n "$model" ]]; then
  if $takes_model; then
    argv+=(--model "$model")
  else
    echo "::notice title=mlops-ci::the 'model' input is ignored by this command"
  fi
fi

status=0
mlops-ci "${argv[@]}" || status=$?

case "$command" in
  publish | command) exit "$status" ;; # they wrote their own outputs and summary
esac

# Where the run record and report land by default: .mlops-ci/ in the project folder, which is
# the config's folder when the config is given (paths passed in `args` are not tracked here).
project="$(pwd -P)"
if [[ -n "$config" ]]; then
  project="$(cd -- "$(dirname -- "$config")" 2>/dev/null && pwd -P)" || project=""
fi
record="${project:+$project/.mlops-ci/record.json}"
report="${project:+$project/.mlops-ci/report.md}"

verdict=""
if [[ -n "$record" && -f "$record" ]]; then
  # The record is read through the library (size-capped, schema-validated), never by hand.
  verdict="$(python - "$record" <<'PY' 2>/dev/null || true
import sys
from pathlib import Path

from mlops_ci.records import load_record

print(load_record(Path(sys.argv[1])).verdict)
PY
)"
else
  record=""
fi
[[ -n "$report" && -f "$report" ]] || report=""

# name<<DELIMITER ... DELIMITER, with a random delimiter that no value can contain by chance.
write_output() {
  local name="$1" value="$2" delimiter
  delimiter="mlops-ci-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  if [[ "$value" == *"$delimiter"* ]]; then
    echo "::error title=mlops-ci::output $name contains its delimiter"
    return 1
  fi
  printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$GITHUB_OUTPUT"
}

if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  write_output verdict "$verdict"
  write_output report-path "$report"
  write_output record-path "$record"
fi

if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -n "$report" ]]; then
  size="$(wc -c <"$report")"
  if ((size > SUMMARY_LIMIT)); then
    head -c "$SUMMARY_LIMIT" -- "$report" >>"$GITHUB_STEP_SUMMARY"
    printf '\n\n_The report was cut at 1 MB; the full report is in the run artifacts._\n' >>"$GITHUB_STEP_SUMMARY"
  else
    cat -- "$report" >>"$GITHUB_STEP_SUMMARY"
  fi
fi

exit "$status"
