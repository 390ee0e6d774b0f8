"""The local Argo server's JobSet controller: every JobSet stored gets its pods run locally
(replicatedJobs x replicas Jobs, each with ``parallelism`` indexed pods; rank-0 DNS names mapped
to 127.0.0.1 and a free port) and ``status.terminalState`` set, as JobSet's controller does."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .argo_exec import ALWAYS_MAPPED, TICK, PathMap, PodError, Process, fnv32a, free_port, volume_mapping
from .argo_state import Pod, now

if TYPE_CHECKING:
    from .argo_controller import Controller


class JobSetRun:
    """Runs a JobSet's pods: replicatedJobs x replicas Jobs, each with `parallelism` indexed pods."""

    def __init__(self, ctl: Controller, namespace: str, name: str, uid: str) -> None:
        self.ctl, self.store, self.ns, self.name, self.uid = ctl, ctl.store, namespace, name, uid
        self.dir = Path(ctl.app.workdir) / namespace / f"jobset-{name}-{uid[:8]}"

    def _obj(self) -> dict | None:
        js = self.store.get("jobsets", self.ns, self.name)
        return js if js is not None and js["metadata"]["uid"] == self.uid else None

    def _status(self, **fields) -> None:
        with self.store.lock:
            js = self._obj()
            if js is not None:
                js.setdefault("status", {}).update(fields)
                self.store.touch(js)

    def run(self) -> None:
        with self.store.lock:
            js = copy.deepcopy(self._obj())
        if js is None:
            return
        spec = js["spec"]
        plan = []  # (replicated job, job index, pod index, pod template)
        for rj in spec.get("replicatedJobs") or []:
            job_spec = rj["template"].get("spec") or {}
            per_job = int(job_spec.get("completions") or job_spec.get("parallelism") or 1)
            for j in range(int(rj.get("replicas", 1))):
                for p in range(per_job):
                    plan.append((rj, j, p, job_spec.get("template") or {}))
        hosts = [f"{self.name}-{rj['name']}-{j}-{p}" for rj, j, p, _ in plan]
        ports: dict[str, int] = {}

        def port(orig: str) -> str:
            return str(ports.setdefault(orig, free_port()))

        host_re = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, sorted(hosts, key=len, reverse=True)))
                             + r")(?:\.[A-Za-z0-9-]+)*(?::(\d+))?(?![\w-])") if hosts else None

        def rewrite(text: str) -> str:
            if host_re is not None:
                text = host_re.sub(lambda m: "127.0.0.1" + (f":{port(m.group(2))}" if m.group(2) else ""), text)
            return re.sub(r"^(--master[-_]port=?)(\d+)$", lambda m: m.group(1) + port(m.group(2)), text)

        procs: list[tuple[Pod, Process]] = []
        failure = ""
        global_index = 0
        for (rj, j, p, tmpl), host in zip(plan, hosts, strict=True):
            pod_name = f"{host}-{fnv32a(self.uid + host) % 100000:05d}"
            labels = {"jobset.sigs.k8s.io/jobset-name": self.name, "jobset.sigs.k8s.io/replicatedjob-name": rj["name"],
                      "jobset.sigs.k8s.io/job-index": str(j), "jobset.sigs.k8s.io/job-global-index": str(global_index),
                      "jobset.sigs.k8s.io/replicatedjob-replicas": str(rj.get("replicas", 1)),
                      "jobset.sigs.k8s.io/restart-attempt": "0", "batch.kubernetes.io/job-completion-index": str(p),
                      **((tmpl.get("metadata") or {}).get("labels") or {})}
            annotations = {**labels, **((tmpl.get("metadata") or {}).get("annotations") or {})}
            global_index += 1
            pod_spec = tmpl.get("spec") or {}
            containers = pod_spec.get("containers") or []
            pod = Pod(pod_name, self.ns, labels, annotations, [c["name"] for c in containers], None)
            with self.store.lock:
                self.store.pods[(self.ns, pod_name)] = pod
            downward = {"hostname": host, "status.podIP": "127.0.0.1", "spec.nodeName": "local",
                        **{f"labels:{k}": v for k, v in labels.items()},
                        **{f"annotations:{k}": v for k, v in annotations.items()}}
            pod_dir = self.dir / pod_name
            try:
                for c in pod_spec.get("initContainers") or []:  # in order, each to completion
                    mapping = {key: pod_dir / key.strip("/").replace("/", "-") for key in ALWAYS_MAPPED}
                    mapping.update(volume_mapping(c, pod_spec.get("volumes") or [], pod_dir))
                    init = self.ctl.start_container(pod, c, pod_dir, PathMap(mapping), downward,
                                                    {"JOB_COMPLETION_INDEX": str(p)}, rewrite)
                    while (code := init.poll()) is None:
                        with self.store.lock:
                            gone = self._obj() is None
                        if gone or self.ctl.closing.is_set():
                            init.kill()
                            return
                        time.sleep(TICK)
                    if code != 0:
                        raise PodError(f"Init:Error: init container {c['name']} exited with code {code}")
                for c in containers:
                    mapping = {key: pod_dir / key.strip("/").replace("/", "-") for key in ALWAYS_MAPPED}
                    mapping.update(volume_mapping(c, pod_spec.get("volumes") or [], pod_dir))
                    extra = {"JOB_COMPLETION_INDEX": str(p)}
                    procs.append((pod, self.ctl.start_container(pod, c, pod_dir, PathMap(mapping), downward,
                                                                extra, rewrite)))
                pod.phase = "Running"
            except PodError as err:
                pod.phase, failure = "Failed", f"pod {pod_name}: {err}"
                pod.log.append(str(err))
                break
        self._status(restarts=0, replicatedJobsStatus=self._jobs_status(spec, procs))
        while not failure:
            with self.store.lock:
                gone = self._obj() is None
            if gone or self.ctl.closing.is_set():
                for _, proc in procs:
                    proc.kill()
                with self.store.lock:
                    for pod, _ in procs:
                        self.store.pods.pop((self.ns, pod.name), None)
                return
            codes = [(pod, proc.poll()) for pod, proc in procs]
            for pod, code in codes:
                if code is not None:
                    pod.phase = "Succeeded" if code == 0 else "Failed"
            bad = [(pod, code) for pod, code in codes if code not in (None, 0)]
            if bad:
                failure = f"pod {bad[0][0].name} exited with code {bad[0][1]}"
                break
            if all(code == 0 for _, code in codes):
                break
            self._status(replicatedJobsStatus=self._jobs_status(spec, procs))
            time.sleep(TICK)
        for pod, proc in procs:
            proc.kill()
            if proc.poll() not in (0,) and pod.phase == "Running":
                pod.phase = "Failed"
        stamp = now()
        if failure:
            cond = {"type": "Failed", "status": "True", "reason": "FailedJobs", "lastTransitionTime": stamp,
                    "message": f"jobset failed due to one or more job failures ({failure})"}
            self._status(terminalState="Failed", conditions=[cond],
                         replicatedJobsStatus=self._jobs_status(spec, procs))
        else:
            cond = {"type": "Completed", "status": "True", "reason": "AllJobsCompleted", "lastTransitionTime": stamp,
                    "message": "jobset completed successfully"}
            self._status(terminalState="Completed", conditions=[cond],
                         replicatedJobsStatus=self._jobs_status(spec, procs))

    @staticmethod
    def _jobs_status(spec: dict, procs: list[tuple[Pod, Process]]) -> list[dict]:
        out = []
        for rj in spec.get("replicatedJobs") or []:
            pods = [pod for pod, _ in procs if pod.labels["jobset.sigs.k8s.io/replicatedjob-name"] == rj["name"]]
            jobs: dict[str, list[str]] = {}
            for pod in pods:
                jobs.setdefault(pod.labels["jobset.sigs.k8s.io/job-index"], []).append(pod.phase)
            def count(want: str, jobs: dict[str, list[str]] = jobs) -> int:
                return sum(all(ph == want for ph in phases) for phases in jobs.values())

            out.append({"name": rj["name"], "ready": 0, "succeeded": count("Succeeded"),
                        "failed": sum(any(ph == "Failed" for ph in phases) for phases in jobs.values()),
                        "active": count("Running"), "suspended": 0})
        return out
