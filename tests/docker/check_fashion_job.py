#!/usr/bin/env python3
"""Static checks of docker/k8s/fashion (no cluster, no images): the
Indexed Job's shape, and that every $VARIABLE its commands use is defined.

    check_fashion_job.py docker/k8s/fashion

Checks: a ConfigMap and two Jobs; the workers Job has completionMode
Indexed, completions = parallelism = the ConfigMap's GAMEOPT_WORKERS,
backoffLimitPerIndex >= 1 with restartPolicy Never (Kubernetes refuses
backoffLimitPerIndex otherwise), its command passes $JOB_COMPLETION_INDEX
as --index and GAMEOPT_WORKERS as --num_shards; every container runs as
non-root with a read-only root filesystem and reads the ConfigMap; every
$NAME in a command is in the ConfigMap, the container's env or
JOB_COMPLETION_INDEX; every flag a command passes to gameopt.fashion_worker
is one its parser knows; kustomization.yaml lists every manifest; and, where
kubectl is installed, `kubectl kustomize` renders the folder.
Exits 1 with the reasons otherwise.
"""

import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


def worker_flags():
    """The long options gameopt.fashion_worker's parser accepts (parsed
    from its source: importing it needs torch)."""
    path = os.path.join(HERE, "..", "..", "client", "python", "gameopt",
                        "fashion_worker.py")
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r'add_argument\(\s*"(--[a-z_]+)"', f.read()))


def main(folder):
    docs = []
    names = sorted(n for n in os.listdir(folder) if n.endswith(".yaml"))
    for name in names:
        if name == "kustomization.yaml":
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    with open(os.path.join(folder, "kustomization.yaml"),
              encoding="utf-8") as f:
        resources = yaml.safe_load(f).get("resources", [])
    for name in names:
        if name != "kustomization.yaml":
            check(name in resources, f"kustomization.yaml misses {name}")

    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                  if d["kind"] == "ConfigMap"}
    jobs = [d for d in docs if d["kind"] == "Job"]
    check(len(configmaps) == 1, f"{len(configmaps)} ConfigMaps, want 1")
    check(len(jobs) == 2, f"{len(jobs)} Jobs, want 2 (create, workers)")
    data = next(iter(configmaps.values()), {})
    known_flags = worker_flags()
    indexed = [j for j in jobs if j["spec"].get("completionMode") ==
               "Indexed"]
    check(len(indexed) == 1, "want exactly one Indexed Job (the workers)")

    for job in jobs:
        name = job["metadata"]["name"]
        pod = job["spec"]["template"]["spec"]
        check(pod.get("securityContext", {}).get("runAsNonRoot") is True,
              f"{name}: pods must run as non-root")
        for c in pod["containers"]:
            where = f"{name}/{c['name']}"
            refs = [r["configMapRef"]["name"] for r in c.get("envFrom", [])]
            check(refs and all(r in configmaps for r in refs),
                  f"{where}: envFrom must name the ConfigMap ({refs})")
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True,
                  f"{where}: root filesystem not read-only")
            check(sc.get("allowPrivilegeEscalation") is False,
                  f"{where}: privilege escalation allowed")
            command = " ".join(c.get("command", []))
            check("gameopt.fashion_worker" in command,
                  f"{where}: does not run gameopt.fashion_worker")
            defined = set(data) | {e["name"] for e in c.get("env", [])}
            if job in indexed:
                defined.add("JOB_COMPLETION_INDEX")
            for var in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", command):
                check(var in defined, f"{where}: ${var} is not defined")
            for flag in re.findall(r"(--[a-z_]+)", command):
                check(flag in known_flags,
                      f"{where}: gameopt.fashion_worker has no {flag}")
            if job in indexed:
                check('--index="$JOB_COMPLETION_INDEX"' in command,
                      f"{where}: the completion index must be --index")
                check('--num_shards="$GAMEOPT_WORKERS"' in command,
                      f"{where}: --num_shards must be GAMEOPT_WORKERS")
            else:
                check("--create" in command, f"{where}: not a create Job")

    for job in indexed:
        spec, name = job["spec"], job["metadata"]["name"]
        workers = int(data.get("GAMEOPT_WORKERS", "0"))
        check(spec.get("completions") == workers,
              f"{name}: completions {spec.get('completions')} != "
              f"GAMEOPT_WORKERS {workers}")
        check(spec.get("parallelism") == spec.get("completions"),
              f"{name}: parallelism != completions")
        check(int(spec.get("backoffLimitPerIndex", 0)) >= 1,
              f"{name}: no backoffLimitPerIndex")
        check("backoffLimit" not in spec,
              f"{name}: backoffLimit and backoffLimitPerIndex together")
        check(spec["template"]["spec"].get("restartPolicy") == "Never",
              f"{name}: backoffLimitPerIndex needs restartPolicy Never")

    kubectl = shutil.which("kubectl")
    if kubectl:
        done = subprocess.run([kubectl, "kustomize", folder],
                              capture_output=True, text=True)
        check(done.returncode == 0,
              f"kubectl kustomize failed: {done.stderr.strip()}")
        if done.returncode == 0:
            rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
            check(len(rendered) == len(docs),
                  f"kubectl kustomize rendered {len(rendered)} objects, "
                  f"the files hold {len(docs)}")
    if errors:
        print("\n".join(f"check_fashion_job: {e}" for e in errors))
        return 1
    print(f"check_fashion_job: OK ({len(docs)} objects"
          f"{', kubectl kustomize renders them' if kubectl else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else
                  os.path.join(HERE, "..", "..", "docker", "k8s",
                               "fashion")))
