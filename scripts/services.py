"""The service comparison (issue 18): LLM-like requests to a virtual IP in front of a
heterogeneous pool, one member policy after another. Each member host runs the request server
(topologies/inference.py) at its own speed; the client hosts replay one seeded open-loop
Poisson schedule at a fraction of the pool's capacity. The same schedule is replayed, on a
freshly started controller and network, for every policy, load and seed; scripts/service_report.py
summarises (tables, paired intervals, plots).

    sudo .venv/bin/python -m scripts.services --quick      (4 policies, 1 seed, 80% load, a kill; under 5 min)
    sudo .venv/bin/python -m scripts.services              (5 policies x 3 loads x 5 seeds, a kill each; ~45 min)

Speeds come from the service's weights: a member of weight w serves w x --base-speed tokens a
second per slot (so weighted round robin knows the true speeds). With --kill MEMBER, one more
run per policy at --kill-load kills that member's server halfway through and reports how many
requests failed and how long after its last answer connections still reached it (a passive
capture on the member's host, topologies.inference sniff). With --direct the clients address
the members themselves, one after another (client-side round robin, policy "client-rr"), and the
controller gets the spec without its services: a baseline without the virtual IP. With --jam
MEMBER, a host added beside that member sends UDP at --jam-mbps to the first client through the
middle half of every run's arrivals, on the path the path policy gives it: a member behind a link
busy with traffic not its own, which a member policy can only tell from the path's load.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from controller.core.spec import TopologyError, parse_spec
from scripts.report import LOADS, load_fractions, parse_quick, print_summary
from scripts.service_report import CUT, MEMBER_COLUMNS, REQUEST_COLUMNS, jam_window, write_report
from topologies.inference import PORT, Member, capacity, schedule, write_schedule
from topologies.lab import ROOT, Lab, default_workdir, provenance, wait_until
from topologies.traffic import BASE_PORT, Player, Transfer

POLICIES = ("round-robin", "least-connections", "weighted", "random", "qlearning")
VARIANTS = {"qlearning+blind": ("--service-q-blind",)}    # its table's states leave the path level out
QUICK = {"policies": "round-robin,least-connections,weighted,qlearning", "seeds": 1, "loads": "0.8"}
SETUP_S = 5      # start and teardown of a lab, for the ETA
CLIENTS_HOSTS_PREFIX = "c"
JAMMER = {"name": "jam", "ip": "10.0.0.250", "mac": "00:00:00:00:00:fa"}     # --jam's host


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.services", description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", type=Path, default=ROOT / "topologies" / "pool.json")
    p.add_argument("--service", default="llm")
    p.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {', '.join(POLICIES + tuple(VARIANTS))}")
    p.add_argument("--loads", default="0.5,0.8,0.95", help=f"fractions of the pool's capacity ({LOADS[0]}..{LOADS[1]})")
    p.add_argument("--seeds", type=int, default=5, help="seeds 1..N, each a different schedule")
    p.add_argument("--duration", type=float, default=20, help="seconds of arrivals per run (5..600)")
    p.add_argument("--drain", type=float, default=10,
                   help="seconds after the arrivals at which unfinished requests are cut (1..120)")
    p.add_argument("--base-speed", type=float, default=150, help="tokens a second per slot of a weight-1 member")
    p.add_argument("--slots", type=int, default=4, help="requests each member decodes at once")
    p.add_argument("--slo-grace", type=float, default=0.5, help="seconds added to each request's deadline")
    p.add_argument("--kill", metavar="MEMBER", default="m3", help="member whose server a kill run stops halfway "
                   "('' for no kill runs)")
    p.add_argument("--kill-load", type=float, default=0.8)
    p.add_argument("--direct", action="store_true", help="clients address the members themselves (no VIP)")
    p.add_argument("--jam", metavar="MEMBER", default="", help="a host added on MEMBER's switch sends UDP at "
                   "--jam-mbps to the first client through the middle half of each run's arrivals: a member "
                   "behind a link busy with traffic not its own ('' for none)")
    p.add_argument("--jam-mbps", type=float, default=1.2, help="the jam's rate (0.1..1000)")
    p.add_argument("--quick", action="store_true",
                   help="; ".join(f"{k}={v}" for k, v in QUICK.items()) + " (options given win)")
    p.add_argument("--out", type=Path, help="results folder (default results/services-<time>)")
    args = parse_quick(p, argv, QUICK)
    args.policies = ["client-rr"] if args.direct else [x.strip() for x in args.policies.split(",") if x.strip()]
    known = POLICIES + tuple(VARIANTS)
    unknown = [x for x in args.policies if x not in known + ("client-rr",)]
    if unknown or not args.policies:
        p.error(f"--policies: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    args.loads = load_fractions(p, args.loads)
    if not LOADS[0] <= args.kill_load <= LOADS[1]:
        p.error(f"--kill-load: in {LOADS[0]}..{LOADS[1]}")
    if not 1 <= args.seeds <= 100 or not 5 <= args.duration <= 600 or not 1 <= args.drain <= 120:
        p.error("--seeds: 1..100; --duration: 5..600 s; --drain: 1..120 s")
    if not 0.1 <= args.jam_mbps <= 1000:
        p.error("--jam-mbps: 0.1..1000")
    if not 1 <= args.base_speed <= 10_000 or not 1 <= args.slots <= 64 or not 0 <= args.slo_grace <= 60:
        p.error("--base-speed: 1..10000; --slots: 1..64; --slo-grace: 0..60 s")
    return args


def service_of(path: Path, name: str) -> dict:
    """The named service of a spec: {vip, port, members: [(host, weight)]}. The controller
    validates the spec as the lab starts; this reads only what the clients need."""
    try:
        raw = json.loads(path.read_text())
        service = next(s for s in raw.get("services", []) if s.get("name") == name)
        return {"vip": service["vip"], "port": service.get("port", PORT),
                "members": [(m["host"], m.get("weight", 1)) for m in service["members"]]}
    except (OSError, ValueError, StopIteration, KeyError, TypeError, AttributeError):
        raise TopologyError(f"{path}: services: no service '{name}' with a vip and members") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mininet.log import setLogLevel     # here: the unit tests import this module without Mininet
    setLogLevel("warning")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        service = service_of(args.topology, args.service)
        if args.jam:    # the spec each run gets: the jammer's name and addresses must be free
            raw = json.loads(args.topology.read_text())
            add_jammer(raw, args.jam)
            parse_spec(raw, f"{args.topology} with --jam")
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for option, member in (("--kill", args.kill), ("--jam", args.jam)):
        if member and member not in dict(service["members"]):
            print(f"error: {option}: '{member}' is not a member of {args.service}", file=sys.stderr)
            return 2
    members = [Member(host, weight * args.base_speed, args.slots) for host, weight in service["members"]]
    folder = args.out or default_workdir("services")
    folder.mkdir(parents=True, exist_ok=True)
    plan = [(load, seed, policy, None) for load in args.loads for seed in range(1, args.seeds + 1)
            for policy in args.policies]
    plan += [(args.kill_load, 1, policy, args.kill) for policy in args.policies] if args.kill else []
    (folder / "config.json").write_text(json.dumps(
        {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
         "capacity_per_s": capacity(members), "members": [m.__dict__ for m in members], "plan": plan,
         **provenance("scripts.services", argv)}, indent=2) + "\n")
    for name, columns in (("requests.csv", REQUEST_COLUMNS), ("members.csv", MEMBER_COLUMNS)):
        with open(folder / name, "w", newline="") as f:
            csv.writer(f).writerow(columns)
    print(f"{len(plan)} runs of {args.duration:g} s (+ up to {args.drain:g} s to finish) on '{args.topology.name}', "
          f"service {args.service} at {service['vip']}:{service['port']}, capacity {capacity(members):.1f} "
          f"requests/s; results in {folder}")
    per_run, interrupted = args.duration + args.drain + SETUP_S, False
    try:
        with tqdm(total=len(plan) * per_run, unit="s", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s "
                  "[{elapsed}<{remaining}]") as bar:
            for k, (load, seed, policy, kill) in enumerate(plan):
                bar.set_description(f"{policy} load {load:g} seed {seed}{' kill ' + kill if kill else ''}")
                name = f"{policy}-load{load:g}-seed{seed}" + (f"-kill{kill}" if kill else "")
                run_once(args, service, members, policy, load, seed, kill, folder / "runs" / name)
                if not kill:
                    append(folder, policy, load, seed, folder / "runs" / name)
                bar.update((k + 1) * per_run - bar.n)
    except KeyboardInterrupt:
        print("\ninterrupted: network and controller stopped; summarising the runs that completed")
        interrupted = True
    if not print_summary(folder, write_report):
        return 1
    print(f"plots: {folder}/response_cdf.png, p95_by_load.png, slo_by_load.png, utilisation.png")
    return 130 if interrupted else 0


def run_once(args: argparse.Namespace, service: dict, members: list[Member], policy: str, load: float,
             seed: int, kill: str | None, rundir: Path) -> None:
    """One policy, load and seed on a fresh controller and network: the clients' and servers'
    logs and run.json in rundir (and kill.json for a kill run)."""
    rundir.mkdir(parents=True, exist_ok=True)
    name = policy.split("+")[0]
    topology, options = args.topology, ("--service-policy", name, "--seed", str(seed), *VARIANTS.get(policy, ()))
    if name == "qlearning":     # one table a variant, learning across its runs, as across restarts of a controller
        table = f"service-qtable{''.join('-' + v for v in policy.split('+')[1:])}.json"
        options += ("--service-q-table", str(rundir.parent.parent / table))
    if args.direct or args.jam:
        raw = json.loads(args.topology.read_text())
        if args.direct:     # the controller balances paths only
            raw.pop("services", None)
            options = ()
        if args.jam:
            add_jammer(raw, args.jam)
        topology = rundir / "spec.json"
        topology.write_text(json.dumps(raw, indent=1) + "\n")
    lab = Lab(topology, rundir, controller_args=options)
    clients = sorted(h.name for h in lab.spec.hosts if h.name.startswith(CLIENTS_HOSTS_PREFIX))
    requests = schedule(seed, load * capacity(members), args.duration, clients)
    write_schedule(rundir / "schedule.json", requests)
    python = [sys.executable, "-m", "topologies.inference"]
    servers: dict[str, subprocess.Popen] = {}
    procs: list[subprocess.Popen] = []
    lifetime = args.duration + args.drain + 20
    window = jam_window(vars(args))     # seconds after t0, as the report reads them
    jam = window and {"member": args.jam, "mbps": args.jam_mbps, "from_s": window[0], "to_s": window[1]}
    jammer: Player | None = None
    with lab:
        lab.pingall()
        try:
            for m in members:
                servers[m.name] = lab.net.get(m.name).popen(
                    [*python, "serve", "--name", m.name, "--speed", str(m.speed), "--slots", str(m.slots),
                     "--port", str(service["port"]), "--log", str(rundir / f"{m.name}.jsonl"),
                     "--lifetime", str(lifetime)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for m in members:
                wait_until(lambda: f":{service['port']} " in lab.net.get(m.name).cmd("ss -ltn"), 10,
                           what=f"the request server on {m.name}")
            if not args.direct:
                wait_healthy(lab, args.service, len(members))
            if kill:
                procs.append(lab.net.get(kill).popen(
                    [*python, "sniff", "--port", str(service["port"]), "--log", str(rundir / f"{kill}-syn.jsonl"),
                     "--lifetime", str(lifetime)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            target = ",".join(lab.spec.host(m.name).ip for m in members) if args.direct else service["vip"]
            t0 = time.time() + 1.0
            until = t0 + args.duration + args.drain
            for c in clients:
                procs.append(lab.net.get(c).popen(
                    ["timeout", str(args.duration + args.drain + 15), *python, "client",
                     "--schedule", str(rundir / "schedule.json"), "--client", c, "--target", target,
                     "--port", str(service["port"]), "--t0", repr(t0), "--until", repr(until),
                     "--out", str(rundir / f"{c}.jsonl")], cwd=ROOT, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE))
            if jam:     # its start, in the player's clock, is t0's from_s
                jammer = Player(lab.net, [Transfer(t0 - time.time() + jam["from_s"], JAMMER["name"], clients[0],
                                                   "udp", args.jam_mbps, jam["to_s"] - jam["from_s"], BASE_PORT)],
                                rundir / "jam").start()
            killed_at = None
            if kill:
                time.sleep(max(0.0, t0 + args.duration / 2 - time.time()))
                servers[kill].kill()
                killed_at = time.time() - t0
            for proc in procs[-len(clients):]:
                proc.wait(timeout=max(1.0, until + 20 - time.time()))
        finally:
            if jammer:
                jammer.stop()
            for proc in [*servers.values(), *procs]:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=5)
    (rundir / "run.json").write_text(json.dumps({"t0": t0, "until": until, "load": load, "seed": seed,
                                                 "policy": policy, "rate_per_s": load * capacity(members),
                                                 "requests": len(requests), "killed_at": killed_at,
                                                 "jam": jam or None}) + "\n")
    if kill:
        (rundir / "kill.json").write_text(json.dumps(kill_result(rundir, policy, load, kill, t0, killed_at,
                                                                 [lab.spec.host(c).ip for c in clients])) + "\n")


def add_jammer(raw: dict, member: str) -> None:
    """Put the host JAMMER on `member`'s switch in a spec's raw JSON, on a link as wide as the member's."""
    try:
        (access,) = [link for link in raw["links"] if member in link["nodes"]]
        (switch,) = [node for node in access["nodes"] if node != member]
    except (ValueError, KeyError, TypeError):
        raise TopologyError(f"--jam: '{member}' is not on exactly one link") from None
    raw["hosts"].append(JAMMER)
    raw["links"].append({"nodes": [JAMMER["name"], switch], "capacity_mbps": access.get("capacity_mbps", 100)})


def wait_healthy(lab: Lab, service: str, count: int, timeout_s: float = 15) -> None:
    """Until the controller reports every member of the service healthy."""
    def healthy() -> bool:
        status, body = lab.api("services")
        found = [s for s in body if s.get("name") == service] if status == 200 and isinstance(body, list) else []
        return bool(found) and sum(bool(m.get("healthy")) for m in found[0].get("members", [])) == count
    wait_until(healthy, timeout_s, what=f"every member of {service} healthy (GET /api/v1/services)")


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a log, one a line; a line cut by a kill is dropped."""
    out = []
    try:
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
    except FileNotFoundError:
        pass
    return out


def append(folder: Path, policy: str, load: float, seed: int, rundir: Path) -> None:
    """A completed run's requests and members into the folder's requests.csv and members.csv."""
    t0 = json.loads((rundir / "run.json").read_text())["t0"]
    config = json.loads((folder / "config.json").read_text())
    with open(folder / "requests.csv", "a", newline="") as f:
        rows = sorted((r for c in sorted(rundir.glob("c*.jsonl")) for r in read_jsonl(c)), key=lambda r: r["id"])
        csv.writer(f).writerows([[policy, load, seed, *(r.get(k) for k in REQUEST_COLUMNS[3:])] for r in rows])
    with open(folder / "members.csv", "a", newline="") as f:
        for m in config["members"]:
            log = [e for e in read_jsonl(rundir / f"{m['name']}.jsonl") if e.get("status") in ("ok", "client gone")]
            busy = sum(e["generated"] - e["admitted"] for e in log)
            last = max((e["generated"] - t0 for e in log), default=None)
            csv.writer(f).writerow([policy, load, seed, m["name"], m["speed"], m["slots"], len(log),
                                    round(busy, 4), None if last is None else round(last, 4)])


def kill_result(rundir: Path, policy: str, load: float, member: str, t0: float, killed_at: float,
                client_ips: list[str]) -> dict:
    """How the pool took the loss of a member: failed requests (refused or reset: not those cut at
    the run's bound, counted apart) and how many of them were in flight on it at the kill, and
    connections from clients that still reached it after its last answer. Its
    last answer: the later of the last request its own log shows finished and the last token a
    client received from it (a request cut by the kill leaves no line in the member's log).
    `syns`: the clients' connections its capture saw in all; `seen_until`: its last SYN from
    anyone, the health checks' from the VIP included (they go on after the kill), so a capture
    that died early shows."""
    requests = [r for c in sorted(rundir.glob("c*.jsonl")) for r in read_jsonl(c)]
    answers = [e["generated"] - t0 for e in read_jsonl(rundir / f"{member}.jsonl") if e.get("generated")]
    answers += [r["last"] for r in requests if r["member"] == member and r.get("last") is not None]
    last_answer = max(answers, default=None)
    failed = [r for r in requests if not r["ok"] and r["error"] != CUT]
    captured = read_jsonl(rundir / f"{member}-syn.jsonl")
    syns = [s["syn"] - t0 for s in captured if s.get("src") in client_ips]
    after = [t for t in syns if last_answer is not None and t > last_answer]
    return {"policy": policy, "load": load, "member": member, "killed_at": killed_at, "last_answer": last_answer,
            "requests": len(requests), "failed": len(failed), "cut": sum(r["error"] == CUT for r in requests),
            "failed_in_flight": sum(r["member"] == member for r in failed),
            "syns": len(syns), "seen_until": max((s["syn"] - t0 for s in captured), default=None),
            "sent_after": len(after),
            "last_sent_after_s": max(after) - last_answer if after else None}


if __name__ == "__main__":
    sys.exit(main())
