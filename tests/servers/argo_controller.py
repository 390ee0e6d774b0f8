"""The local Argo server's "controller": runs each Workflow in a background thread, moving it
Pending -> Running -> Succeeded/Failed/Error and recording ``status`` as Argo does (phase,
startedAt/finishedAt, message, nodes, outputs). Templates: ``container`` and ``script`` (run as
local processes, see argo_exec.py), ``resource`` (create/apply/delete; a JobSet is created and
run by jobset_controller.py), and ``steps``. It also plays the JobSet controller
(jobset_controller.py): every JobSet stored gets its pods run locally (rank-0 DNS names mapped to
127.0.0.1 and a free port) and ``status.terminalState`` set. Anything not implemented fails the Workflow with a message that
says so and is recorded in ``server.errors``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from .argo_exec import (ALWAYS_MAPPED, TICK, PathMap, PodError, Process, base_env, container_env, expand_vars,
                        fnv32a, git_clone, map_command, volume_mapping)
from .argo_state import Pod, now
from .jobset_controller import JobSetRun

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
STOP_MESSAGE = "Stopped with strategy '{}'"
DEADLINE_MESSAGE = "Step exceeded its deadline"
_VAR = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


def substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [substitute(v, values) for v in node]
    if isinstance(node, dict):
        return {k: substitute(v, values) for k, v in node.items()}
    return node


def evaluate_when(expression: str) -> bool:
    """A step's `when` after substitution: `a == b` / `a != b` terms joined by && or || (the
    part of govaluate's syntax templates use here); anything else raises NotImplementedError."""
    def term(text: str) -> bool:
        m = re.fullmatch(r"\s*'?([^'=!]*?)'?\s*(==|!=)\s*'?([^'=!]*?)'?\s*", text)
        if not m:
            raise NotImplementedError(f"`when: {expression}` (only == and != comparisons)")
        return (m.group(1) == m.group(3)) == (m.group(2) == "==")
    return any(all(term(t) for t in alt.split("&&")) for alt in expression.split("||"))


class Interrupted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "Stop", "Terminate", "deadline", "deleted"


# -- Argo's own validation (the Argo Server runs it at submission, the controller at start) ---
def resolve_spec(store, namespace: str, wf: dict) -> tuple[dict, list[str]]:
    """The Workflow's spec with its workflowTemplateRef merged in, and what Argo would refuse."""
    spec = copy.deepcopy(wf.get("spec") or {})
    problems: list[str] = []
    ref = spec.pop("workflowTemplateRef", None)
    if ref:
        if ref.get("clusterScope"):
            return spec, ["spec.workflowTemplateRef: ClusterWorkflowTemplates are not served by the local Argo server"]
        tmpl = store.get("workflowtemplates", namespace, ref.get("name", ""))
        if tmpl is None:
            return spec, [f'workflowtemplates.argoproj.io "{ref.get("name")}" not found']
        base = copy.deepcopy(tmpl["spec"])
        args = {p["name"]: p for p in (base.get("arguments") or {}).get("parameters") or []}
        for p in (spec.get("arguments") or {}).get("parameters") or []:
            args[p["name"]] = {**args.get(p["name"], {}), **p}
        templates = {t["name"]: t for t in base.get("templates") or []}
        templates.update({t["name"]: t for t in spec.get("templates") or []})
        base.update({k: v for k, v in spec.items() if k not in ("arguments", "templates")})
        base["arguments"] = {**(base.get("arguments") or {}), "parameters": list(args.values())}
        base["templates"] = list(templates.values())
        spec = base
    params = (spec.get("arguments") or {}).get("parameters") or []
    for p in params:
        if "value" not in p and "valueFrom" not in p:
            problems.append(f"spec.arguments.{p['name']}.value is required")
        elif p.get("enum") and "value" in p and p["value"] not in p["enum"]:
            problems.append(f"spec.arguments.{p['name']}.value: {p['value']!r} is not in enum {p['enum']}")
    templates = {t["name"]: t for t in spec.get("templates") or []}
    entry = spec.get("entrypoint")
    if not entry:
        problems.append("spec.entrypoint is required")
    elif entry not in templates:
        problems.append(f"spec.entrypoint: template {entry!r} not found")
    if spec.get("onExit") and spec["onExit"] not in templates:
        problems.append(f"spec.onExit: template {spec['onExit']!r} not found")
    declared = {p["name"] for p in params}
    for t in templates.values():
        inputs = {p["name"] for p in (t.get("inputs") or {}).get("parameters") or []}
        for m in _VAR.finditer(json.dumps(t)):
            var = m.group(1)
            if (var.startswith("workflow.parameters.") and var.split(".", 2)[2] not in declared) or \
                    (var.startswith("inputs.parameters.") and var.split(".", 2)[2] not in inputs):
                problems.append(f"templates.{t['name']}: failed to resolve {{{{{var}}}}}")
        for group in t.get("steps") or []:
            for step in group:
                if step.get("template") not in templates:
                    problems.append(f"templates.{t['name']}.steps: template {step.get('template')!r} not found")
    return spec, problems


def _jsonpath(obj: Any, path: str) -> Any:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    for key in [k for k in re.split(r"\.|\[(\d+)\]", path.lstrip(".")) if k]:
        if isinstance(obj, list) and key.isdigit():
            obj = obj[int(key)] if int(key) < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def condition_holds(obj: dict, condition: str) -> bool:
    """Argo's resource success/failure condition: comma-separated `path op value` terms, all
    of which must hold (ops ==, =, !=, >, <, in (...), notin (...))."""
    for term in [t for t in re.split(r",(?![^(]*\))", condition) if t.strip()]:
        m = re.match(r"^\s*([\w.\[\]-]+)\s*(==|=|!=|>|<|\s+in\s+|\s+notin\s+)\s*\(?(.*?)\)?\s*$", term)
        if not m:
            raise ValueError(f"unsupported condition {term!r}")
        actual, op, expected = _jsonpath(obj, m.group(1)), m.group(2).strip(), m.group(3)
        text = "" if actual is None else str(actual)
        if op in ("==", "="):
            ok = actual is not None and text == expected
        elif op == "!=":
            ok = text != expected
        elif op in ("in", "notin"):
            ok = (actual is not None and text in [v.strip() for v in expected.split(",")]) == (op == "in")
        else:
            try:
                ok = float(text) > float(expected) if op == ">" else float(text) < float(expected)
            except ValueError:
                ok = False
        if not ok:
            return False
    return True


class Controller:
    def __init__(self, app) -> None:
        self.app = app
        self.store = app.store
        self.threads: list[threading.Thread] = []
        self.processes: list[Process] = []
        self.closing = threading.Event()

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=self._guard, args=(target, name), name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _guard(self, target, name: str) -> None:
        try:
            target()
        except Exception:  # noqa: BLE001 (a bug in the local server: make it loud)
            self.app.errors.append(f"{name} crashed:\n{traceback.format_exc()}")

    def start_workflow(self, namespace: str, name: str) -> None:
        with self.store.lock:
            uid = self.store.get("workflows", namespace, name)["metadata"]["uid"]
        run = WorkflowRun(self, namespace, name, uid)
        self._spawn(run.run, f"workflow {namespace}/{name}")

    def start_jobset(self, namespace: str, name: str) -> None:
        with self.store.lock:
            uid = self.store.get("jobsets", namespace, name)["metadata"]["uid"]
        run = JobSetRun(self, namespace, name, uid)
        self._spawn(run.run, f"jobset {namespace}/{name}")

    def live_processes(self) -> list[int]:
        return [p.pid for p in self.processes if p.proc.poll() is None]

    def close(self) -> None:
        self.closing.set()
        for p in list(self.processes):
            p.kill()
        for t in self.threads:
            t.join(timeout=10)

    # shared by workflow and JobSet pods
    def start_container(self, pod: Pod, container: dict, pod_dir: Path, pmap: PathMap, downward: dict,
                        extra_env: dict[str, str], rewrite=lambda s: s) -> Process:
        env = container_env(container, {**base_env(pod_dir, downward.get("hostname", pod.name)), **extra_env},
                            {**downward, "metadata.name": pod.name, "metadata.namespace": pod.namespace})
        argv = [expand_vars(str(a), env) for a in (container.get("command") or []) + (container.get("args") or [])]
        repos = {url: str(path) for url, path in self.app.repos.items()}
        argv = map_command([repos.get(a) or rewrite(pmap.sub(a)) for a in argv])
        env = {k: rewrite(pmap.sub(v)) for k, v in env.items()}
        cwd = pmap.local(container["workingDir"]) if container.get("workingDir") else pod_dir
        if not cwd.is_dir():
            raise PodError(f"failed to start container: chdir {container.get('workingDir')}: no such file or directory")
        for key in ALWAYS_MAPPED:
            pmap.local(key).mkdir(parents=True, exist_ok=True)
        for prefix, local in pmap.mapping.items():
            if not local.exists() and prefix not in ("/",):
                local.mkdir(parents=True, exist_ok=True)

        def sink(line: str) -> None:
            with self.store.lock:
                pod.log.append(line)

        proc = Process(argv, cwd=cwd, env=env, sink=sink)
        self.processes.append(proc)
        return proc


class WorkflowRun:
    def __init__(self, ctl: Controller, namespace: str, name: str, uid: str) -> None:
        self.ctl, self.store, self.ns, self.name, self.uid = ctl, ctl.store, namespace, name, uid
        self.dir = Path(ctl.app.workdir) / namespace / name
        self.in_exit = False
        self.deadline: float | None = None
        self.spec: dict = {}
        self.globals: dict[str, str] = {}

    # -- state ------------------------------------------------------------------------------
    def _wf(self) -> dict | None:
        wf = self.store.get("workflows", self.ns, self.name)
        return wf if wf is not None and wf["metadata"]["uid"] == self.uid else None

    def update(self, fn) -> None:
        with self.store.lock:
            wf = self._wf()
            if wf is not None:
                fn(wf.setdefault("status", {}))
                self.store.touch(wf)

    def set_node(self, node_id: str, **fields: Any) -> None:
        def apply(status: dict) -> None:
            node = status.setdefault("nodes", {}).setdefault(node_id, {"id": node_id})
            node.update({k: v for k, v in fields.items() if v is not None})
        self.update(apply)

    def interrupted(self) -> str | None:
        if self.ctl.closing.is_set():
            return "Terminate"
        with self.store.lock:
            wf = self._wf()
            if wf is None:
                return "deleted"
            shutdown = (wf.get("spec") or {}).get("shutdown")
        if shutdown == "Terminate" or (shutdown and not self.in_exit):
            return shutdown
        if not self.in_exit and self.deadline is not None and time.monotonic() > self.deadline:
            return "deadline"
        return None

    def check(self) -> None:
        reason = self.interrupted()
        if reason:
            raise Interrupted(reason)

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> None:
        self.update(lambda s: s.update(phase="Pending", startedAt=now()))
        with self.store.lock:
            wf = copy.deepcopy(self._wf())
        if wf is None:
            return
        spec, problems = resolve_spec(self.store, self.ns, wf)
        if problems:
            self.finish("Failed", "invalid spec: " + "; ".join(problems))
            return
        self.spec = spec
        self.templates = {t["name"]: t for t in spec.get("templates") or []}
        self.globals = {"workflow.name": self.name, "workflow.namespace": self.ns, "workflow.uid": self.uid,
                        "workflow.serviceAccountName": spec.get("serviceAccountName", "default"),
                        "workflow.creationTimestamp": wf["metadata"].get("creationTimestamp", "")}
        for p in (spec.get("arguments") or {}).get("parameters") or []:
            self.globals[f"workflow.parameters.{p['name']}"] = str(p.get("value", ""))
        if spec.get("activeDeadlineSeconds") is not None:
            self.deadline = time.monotonic() + float(spec["activeDeadlineSeconds"])
        self.update(lambda s: s.update(phase="Running"))
        self._label("Running", False)
        phase, message, outputs = self.execute(spec["entrypoint"], {}, self.name, None)
        reason = self.interrupted()
        if reason == "deleted":
            return
        if spec.get("onExit") and reason != "Terminate":
            self.in_exit = True
            self.globals["workflow.status"] = phase
            self.globals["workflow.failures"] = "[]"
            exit_phase, exit_message, _ = self.execute(spec["onExit"], {}, f"{self.name}.onExit", None)
            if phase == "Succeeded" and exit_phase != "Succeeded":
                phase, message = exit_phase, exit_message
        self.finish(phase, message, outputs)

    def _label(self, phase: str, completed: bool) -> None:
        with self.store.lock:
            wf = self._wf()
            if wf is not None:
                labels = wf["metadata"].setdefault("labels", {})
                labels["workflows.argoproj.io/phase"] = phase
                labels["workflows.argoproj.io/completed"] = "true" if completed else "false"

    def finish(self, phase: str, message: str = "", outputs: dict | None = None) -> None:
        def apply(status: dict) -> None:
            status.update(phase=phase, finishedAt=now())
            status.setdefault("startedAt", status["finishedAt"])
            if message:
                status["message"] = message
            if outputs:
                status["outputs"] = outputs
            nodes = [n for n in (status.get("nodes") or {}).values() if n.get("type") == "Pod"]
            done = sum(n.get("phase") == "Succeeded" for n in nodes)
            status["progress"] = f"{done}/{len(nodes)}"
        with self.store.lock:
            self._label(phase, True)
            self.update(apply)
            for pod in self.store.pods.values():
                if pod.workflow == self.name and pod.namespace == self.ns:
                    pod.labels["workflows.argoproj.io/completed"] = "true"

    # -- templates ----------------------------------------------------------------------------
    def execute(self, template_name: str, arguments: dict, node_name: str,
                parent: str | None) -> tuple[str, str, dict | None]:
        tmpl = self.templates[template_name]
        values = dict(self.globals)
        given = {p["name"]: p for p in (arguments.get("parameters") or [])}
        inputs = []
        for p in (tmpl.get("inputs") or {}).get("parameters") or []:
            value = given.get(p["name"], p).get("value")
            if value is None:
                return self._fail_node(node_name, template_name, parent,
                                       f"inputs.parameters.{p['name']} was not supplied")
            values[f"inputs.parameters.{p['name']}"] = str(value)
            inputs.append({"name": p["name"], "value": str(value)})
        if node_name == self.name:
            pod_name = self.name
        else:
            pod_name = f"{self.name}-{template_name}-{fnv32a(node_name)}"[:253]
        values["pod.name"] = pod_name
        values["node.name"] = node_name
        t = substitute(tmpl, values)
        if "container" in t or "script" in t or "resource" in t:
            return self.run_pod(t, pod_name, node_name, template_name, parent, inputs)
        if "steps" in t:
            return self.run_steps(t, node_name, template_name, parent)
        kind = next((k for k in ("dag", "suspend", "http", "plugin", "containerSet", "data") if k in t), "?")
        message = f"the local Argo server does not implement {kind!r} templates (template {template_name!r})"
        self.ctl.app.errors.append(message)
        return self._fail_node(node_name, template_name, parent, message, phase="Error")

    def _fail_node(self, node_name, template_name, parent, message, phase="Failed"):
        node_id = f"{self.name}-{fnv32a(node_name)}" if node_name != self.name else self.name
        self.set_node(node_id, name=node_name, displayName=node_name.rsplit(".", 1)[-1], type="Pod",
                      templateName=template_name, phase=phase, message=message, startedAt=now(), finishedAt=now())
        self._child(parent, node_id)
        return phase, message, None

    def _child(self, parent: str | None, node_id: str) -> None:
        if parent:
            def apply(status):
                children = status["nodes"][parent].setdefault("children", [])
                if node_id not in children:
                    children.append(node_id)
            self.update(apply)

    def run_steps(self, t: dict, node_name: str, template_name: str, parent: str | None):
        node_id = self.name if node_name == self.name else f"{self.name}-{fnv32a(node_name)}"
        self.set_node(node_id, name=node_name, displayName=node_name.rsplit(".", 1)[-1], type="Steps",
                      templateName=template_name, phase="Running", startedAt=now())
        self._child(parent, node_id)
        phase, message = "Succeeded", ""
        step_values: dict[str, str] = {}
        for index, group in enumerate(t["steps"]):
            results: dict[str, tuple] = {}

            def one(step, index=index, results=results):
                if step.get("when") and not evaluate_when(substitute(step["when"], {**self.globals, **step_values})):
                    results[step["name"]] = ("Succeeded", "", None)  # Skipped, which does not fail the steps
                    return
                results[step["name"]] = self.execute(step["template"], substitute(step.get("arguments") or {},
                                                                                  step_values),
                                                     f"{node_name}[{index}].{step['name']}", node_id)
            threads = [threading.Thread(target=self.ctl._guard, args=(lambda s=s: one(s), "step"), daemon=True)
                       for s in group]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            for step_name, (_, _, step_outputs) in results.items():
                for p in (step_outputs or {}).get("parameters") or []:
                    step_values[f"steps.{step_name}.outputs.parameters.{p['name']}"] = p["value"]
            failed = [(n, r) for n, r in results.items() if r[0] != "Succeeded"]
            if len(results) < len(group):
                phase, message = "Error", "a step crashed the local Argo server"
                break
            if failed:
                name, (child_phase, child_message, _) = failed[0]
                phase, message = "Failed", child_message if self.interrupted() else f"child '{name}' failed"
                break
        outputs = None
        if phase == "Succeeded":
            params = [{"name": p["name"], "value": substitute((p.get("valueFrom") or {}).get("parameter", ""),
                                                              step_values)}
                      for p in (t.get("outputs") or {}).get("parameters") or []]
            outputs = {"parameters": params} if params else None
        self.set_node(node_id, phase=phase, message=message or None, finishedAt=now(), outputs=outputs)
        return phase, message, outputs

    def run_pod(self, t: dict, pod_name: str, node_name: str, template_name: str, parent: str | None,
                inputs: list[dict]):
        node_id = pod_name
        self.set_node(node_id, name=node_name, displayName=node_name.rsplit(".", 1)[-1], type="Pod",
                      templateName=template_name, phase="Pending", startedAt=now(), hostNodeName="local",
                      inputs={"parameters": inputs} if inputs else None)
        self._child(parent, node_id)
        pod = Pod(pod_name, self.ns, {WORKFLOW_LABEL: self.name, "workflows.argoproj.io/completed": "false"},
                  {"workflows.argoproj.io/node-name": node_name, "workflows.argoproj.io/node-id": node_id},
                  ["init", "wait", "main"], self.name)
        with self.store.lock:
            self.store.pods[(self.ns, pod_name)] = pod
        pod_dir = self.dir / pod_name
        pod_dir.mkdir(parents=True, exist_ok=True)
        phase, message, outputs = "Succeeded", "", None
        try:
            self.check()
            if "resource" in t:
                pod.phase = "Running"
                self.set_node(node_id, phase="Running")
                phase, message, outputs = self.run_resource(t, pod)
            else:
                phase, message, outputs = self.run_container(t, pod, pod_dir, node_id)
        except PodError as err:
            phase, message = "Error", str(err)
        except Interrupted as stop:
            phase = "Failed"
            message = DEADLINE_MESSAGE if stop.reason == "deadline" else STOP_MESSAGE.format(stop.reason)
        except NotImplementedError as err:
            phase, message = "Error", f"the local Argo server does not implement {err}"
            self.ctl.app.errors.append(message)
        pod.phase = "Succeeded" if phase == "Succeeded" else "Failed"
        self.set_node(node_id, phase=phase, message=message or None, finishedAt=now(), outputs=outputs)
        return phase, message, outputs

    def run_container(self, t: dict, pod: Pod, pod_dir: Path, node_id: str):
        container = copy.deepcopy(t.get("container") or t.get("script"))
        mapping = {key: pod_dir / key.strip("/").replace("/", "-") for key in ALWAYS_MAPPED}
        mapping.update(volume_mapping(container, t.get("volumes") or [], pod_dir))
        for art in (t.get("inputs") or {}).get("artifacts") or []:
            dest = pod_dir / "artifacts" / art["name"]
            if "git" in art:
                repo = art["git"].get("repo", "")
                local = self.ctl.app.repos.get(repo)
                if local is None:
                    raise PodError(f"failed to load artifact {art['name']!r}: git clone of {repo!r} failed: "
                                   "repository not found (the local Argo server serves only the repos it was given)")
                git_clone(Path(local), art["git"].get("revision"), dest)
            elif "raw" in art:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(art["raw"].get("data", ""))
            else:
                raise NotImplementedError(f"artifact {art['name']!r} (only git and raw input artifacts)")
            mapping[art["path"]] = dest
        pmap = PathMap(mapping)
        if "script" in t:
            script = pod_dir / "script"
            script.write_text(container.pop("source", ""))
            container["args"] = [*(container.get("args") or []), str(script)]
            container.setdefault("command", ["python"])
        pod.phase = "Running"
        self.set_node(node_id, phase="Running")
        proc = self.ctl.start_container(pod, container, pod_dir, pmap, {"hostname": pod.name}, {})
        try:
            while (code := proc.poll()) is None:
                self.check()
                time.sleep(TICK)
        except Interrupted:
            proc.kill()
            raise
        outputs = self._outputs(t, pmap)
        if code != 0:
            return "Failed", f"Error (exit code {code})", outputs
        return "Succeeded", "", outputs

    def _outputs(self, t: dict, pmap: PathMap, obj: dict | None = None) -> dict | None:
        params = []
        for p in (t.get("outputs") or {}).get("parameters") or []:
            source = p.get("valueFrom") or {}
            value = None
            if "path" in source:
                path = pmap.local(source["path"]) if pmap else None
                if path is not None and path.is_file():
                    value = path.read_text(encoding="utf-8", errors="replace").rstrip("\n")
            elif "jsonPath" in source and obj is not None:
                found = _jsonpath(obj, source["jsonPath"])
                value = None if found is None else (found if isinstance(found, str) else json.dumps(found))
            elif source:
                raise NotImplementedError(f"output parameter valueFrom {sorted(source)}")
            if value is None:
                value = source.get("default")
            if value is not None:
                params.append({"name": p["name"], "value": value})
        return {"parameters": params} if params else None

    def run_resource(self, t: dict, pod: Pod):
        res = t["resource"]
        if "manifest" not in res:
            raise NotImplementedError("resource templates without an inline manifest")
        try:
            obj = yaml.safe_load(res["manifest"])
        except yaml.YAMLError as err:
            return "Error", f"the resource manifest is not YAML: {err}", None
        kind = (obj or {}).get("kind")
        plural = {"JobSet": "jobsets", "Workflow": "workflows"}.get(kind)
        if plural is None:
            raise NotImplementedError(f"resource kind {kind!r} (JobSet and Workflow only)")
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace") or self.ns
        action = res.get("action")
        log = lambda line: pod.log.append(line)  # noqa: E731
        if action == "delete":
            with self.store.lock:
                gone = self.ctl.app.delete_object(plural, namespace, meta.get("name", ""))
            log(f"{kind.lower()}.{obj['apiVersion'].split('/')[0]} \"{meta.get('name')}\" "
                + ("deleted" if gone else "not found (ignored)"))
            return "Succeeded", "", None
        if action not in ("create", "apply"):
            raise NotImplementedError(f"resource action {action!r}")
        if res.get("setOwnerReference"):
            meta.setdefault("ownerReferences", []).append(
                {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": self.name, "uid": self.uid,
                 "blockOwnerDeletion": True, "controller": True})
        from .argo_objects import ApiFailure
        try:
            with self.store.lock:
                created = self.ctl.app.create_object(plural, namespace, obj, allow_existing=action == "apply")
        except ApiFailure as err:
            log(f"Error from server ({err.reason}): {err.message}")
            return "Failed", err.message, None
        name = created["metadata"]["name"]
        log(f"{kind.lower()}.{obj['apiVersion'].split('/')[0]}/{name} created")
        success, failure = res.get("successCondition"), res.get("failureCondition")
        while success or failure:
            with self.store.lock:
                current = copy.deepcopy(self.store.get(plural, namespace, name))
            if current is None:
                return "Failed", f"{kind} {namespace}/{name} was deleted", None
            if failure and condition_holds(current, failure):
                return "Failed", f"failed with the following condition: {failure}", self._outputs(t, None, current)
            if success and condition_holds(current, success):
                break
            self.check()
            time.sleep(TICK * 2)
        with self.store.lock:
            current = copy.deepcopy(self.store.get(plural, namespace, name)) or created
        return "Succeeded", "", self._outputs(t, None, current)
