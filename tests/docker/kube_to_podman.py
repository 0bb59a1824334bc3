#!/usr/bin/env python3
"""Turns docker/k8s's manifests into what `podman kube play` (4.3: Pod,
Deployment, PersistentVolumeClaim, ConfigMap) can run, for docker/test.sh.

    kube_to_podman.py --prefix P --image IMG [--set KEY=VALUE ...] \
        --servers OUT1 --jobs OUT2 docker/k8s/*.yaml
    kube_to_podman.py --prefix P --image IMG --worker_image WIMG \
        --service gameopt [--set KEY=VALUE ...] --jobs OUT docker/k8s/fashion/*.yaml

Checks the manifests' shape first (the kinds and the probes that
docker/README.md describes), then writes:
  OUT1: the ConfigMap, each StatefulSet as `replicas` Pods P-NAME-<i> with a
        PersistentVolumeClaim P-CLAIM-NAME-<i> per volumeClaimTemplate;
  OUT2: the ConfigMap and each Job as `parallelism` Pods P-NAME-<i>
        (restartPolicy Never); the Pods of an Indexed Job get
        JOB_COMPLETION_INDEX=<i> as Kubernetes sets it.
The second form reads manifests without a server (the Fashion-MNIST
experiment's Jobs, next to the StatefulSet of the first) and writes only
OUT; --service names the headless Service whose addresses it rewrites.
What podman cannot run is replaced, and the test says so:
  - the headless Service (no DNS of its own in podman): addresses
    "POD.SERVICE:PORT" in the ConfigMap become "P-POD:PORT", the pod's name
    on the podman network;
  - native gRPC probes (ignored by podman 4.3): the liveness probe becomes an
    exec probe running gameopt_health_check on the same port and service,
    which podman turns into the container's healthcheck; readiness probes
    (unsupported) are dropped;
  - Job semantics (completions, backoffLimit, backoffLimitPerIndex) and the
    StatefulSet's controller: plain pods, checked by the test instead.
"""

import argparse
import copy
import re
import sys

import yaml


def fail(message):
    sys.exit(f"kube_to_podman: {message}")


def load(paths):
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return docs


def check(docs, server=True):
    kinds = [d["kind"] for d in docs]
    needed = ("ConfigMap", "Service", "StatefulSet", "Job") if server else (
        "ConfigMap", "Job")
    for kind in needed:
        if kind not in kinds:
            fail(f"no {kind} in the manifests")
    for d in docs:
        if d["kind"] == "Service" and d["spec"].get("clusterIP") != "None":
            fail(f"Service {d['metadata']['name']} is not headless")
        if d["kind"] == "StatefulSet":
            spec = d["spec"]
            if not spec.get("volumeClaimTemplates"):
                fail("the StatefulSet has no state volume")
            for c in spec["template"]["spec"]["containers"]:
                for probe in ("readinessProbe", "livenessProbe"):
                    if "grpc" not in c.get(probe, {}):
                        fail(f"{c['name']}: {probe} is not a gRPC probe")
        if d["kind"] == "Job":
            spec = d["spec"]
            if spec.get("parallelism", 1) != spec.get("completions", 1):
                fail(f"Job {d['metadata']['name']}: parallelism != "
                     f"completions")
            if spec.get("completionMode") == "Indexed" and (
                    "backoffLimitPerIndex" in spec and
                    spec["template"]["spec"].get("restartPolicy") != "Never"):
                fail(f"Job {d['metadata']['name']}: backoffLimitPerIndex "
                     f"needs restartPolicy Never")


def rename(prefix, name):
    return f"{prefix}-{name}"


def pod(prefix, name, template, images, restart=None, index=None):
    spec = copy.deepcopy(template["spec"])
    if restart:
        spec["restartPolicy"] = restart
    for c in spec["containers"]:
        image = images.get(c.get("image", "").split(":")[0])
        if image:
            c["image"] = image
            c["imagePullPolicy"] = "Never"
        if index is not None:
            c.setdefault("env", []).append(
                {"name": "JOB_COMPLETION_INDEX", "value": str(index)})
        c.pop("readinessProbe", None)
        live = c.get("livenessProbe")
        if live and "grpc" in live:
            grpc = live.pop("grpc")
            command = ["gameopt_health_check",
                       f"--address=127.0.0.1:{grpc['port']}"]
            if grpc.get("service"):
                command.append(f"--service={grpc['service']}")
            live["exec"] = {"command": command}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": rename(prefix, name),
                         "labels": dict(template["metadata"].get("labels",
                                                                 {}))},
            "spec": spec}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--set", action="append", default=[],
                        help="KEY=VALUE in the ConfigMap")
    parser.add_argument("--worker_image",
                        help="what the image gameopt-worker becomes")
    parser.add_argument("--service", action="append", default=[],
                        help="a headless Service defined elsewhere")
    parser.add_argument("--servers",
                        help="omitted: the manifests hold only Jobs")
    parser.add_argument("--jobs", required=True)
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args()
    docs = load([p for p in args.manifests
                 if not p.endswith("kustomization.yaml")])
    check(docs, server=args.servers is not None)
    images = {"gameopt": args.image}
    if args.worker_image:
        images["gameopt-worker"] = args.worker_image
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    services |= set(args.service)
    configmaps = []
    for d in docs:
        if d["kind"] != "ConfigMap":
            continue
        d = copy.deepcopy(d)
        for item in args.set:
            key, _, value = item.partition("=")
            d["data"][key] = value
        for key, value in d["data"].items():
            # POD.SERVICE[:PORT] -> PREFIX-POD[:PORT]
            for service in services:
                value = re.sub(
                    rf"\b([a-z0-9-]+)\.{re.escape(service)}\b(?=[:,]|$)",
                    lambda m: rename(args.prefix, m.group(1)), value)
            d["data"][key] = value
        configmaps.append(d)
    servers, jobs = list(configmaps), list(configmaps)
    for d in docs:
        name = d["metadata"]["name"]
        if d["kind"] == "StatefulSet":
            for i in range(d["spec"].get("replicas", 1)):
                p = pod(args.prefix, f"{name}-{i}", d["spec"]["template"],
                        images)
                p["spec"]["hostname"] = f"{name}-{i}"
                p["spec"].setdefault("volumes", [])
                for claim in d["spec"]["volumeClaimTemplates"]:
                    claim_name = rename(
                        args.prefix, f"{claim['metadata']['name']}-{name}-{i}")
                    servers.append({
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim_name},
                        "spec": copy.deepcopy(claim["spec"])})
                    p["spec"]["volumes"].append({
                        "name": claim["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim_name}})
                servers.append(p)
        elif d["kind"] == "Job":
            indexed = d["spec"].get("completionMode") == "Indexed"
            for i in range(d["spec"].get("parallelism", 1)):
                jobs.append(pod(args.prefix, f"{name}-{i}",
                                d["spec"]["template"], images,
                                restart="Never",
                                index=i if indexed else None))
    for path, out in ((args.servers, servers), (args.jobs, jobs)):
        if path is None:
            continue
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(out, f, sort_keys=False)


if __name__ == "__main__":
    main()
