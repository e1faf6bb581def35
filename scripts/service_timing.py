"""Service timing on real Open vSwitch (topologies/services.json), the figures of
docs/services.md: (1) the error of the controller's response time (the SYN's packet-in to the
member's FIN's) against the client's own connect-to-EOF time, for servers answering after 50 ms
and 500 ms (30 connections each, one at a time); (2) how long after its last answer a member is
taken out when its server is killed (its kernel refuses: RST) and when its switch port goes
silent (no-receive, no-forward), 5 trials each, and how soon it is back.

    sudo .venv/bin/python -m scripts.service_timing

The controller runs at DEBUG (its per-connection response line); the log's rate limit passes
20 lines a template per 10 s, so some connections go unreported: the count says how many.
"""

import json
import re
import statistics
import subprocess
import sys
import time

from topologies.lab import ROOT, Lab, default_workdir, wait_until

SERVER = """
import socket, sys, threading, time
delay = float(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8000)); s.listen(64)
def serve(c):
    c.recv(1000); time.sleep(delay); c.sendall(b"x" * 2000); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
CLIENT = """
import socket, sys, time, json
out = []
for i in range(int(sys.argv[1])):
    t0 = time.monotonic(); c = socket.create_connection(("10.0.0.100", 8000), timeout=10)
    c.sendall(b"GET\\n"); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    t1 = time.monotonic(); port = c.getsockname()[1]; c.close()
    out.append([port, (t1 - t0) * 1e3]); time.sleep(0.3)
print(json.dumps(out))
"""

MEMBERS = ("m1", "m2", "m3")


def members(lab):
    return {m["host"]: m for m in lab.api("services")[1][0]["members"]}


def healthy(lab):
    return {host: m["healthy"] for host, m in members(lab).items()}


def completed(lab):
    return sum(m["completed"] for m in members(lab).values())


def main():
    work = default_workdir("service-timing")
    with Lab(ROOT / "topologies" / "services.json", work, controller_args=("--log-level", "DEBUG")) as lab:
        servers = {m: lab.net.get(m).popen([sys.executable, "-c", SERVER, "0.5"]) for m in ("m1", "m2", "m3")}
        assert lab.pingall()[0] == 0
        wait_until(lambda: all(healthy(lab).values()), 15, what="members up")
        # (2) response time error
        for delay in ("0.05", "0.5"):
            for m in MEMBERS:
                servers[m].kill(); servers[m].wait()
                servers[m] = lab.net.get(m).popen([sys.executable, "-c", SERVER, delay])
            wait_until(lambda: all(":8000" in lab.net.get(m).cmd("ss -ltn") for m in MEMBERS), 10,
                       what="servers listening")
            wait_until(lambda: all(healthy(lab).values()), 15, what="members up")
            mark, done = len(lab.log_text()), completed(lab)
            out = lab.net.get("h1").popen([sys.executable, "-c", CLIENT, "30"], stdout=subprocess.PIPE, text=True)
            client = json.loads(out.communicate(timeout=120)[0])
            wait_until(lambda: completed(lab) >= done + len(client), 5, what="every member's FIN")
            log = lab.log_text()[mark:]
            ctl = {int(p): float(ms) for p, ms in re.findall(r"tcp 10\.0\.0\.1:(\d+) > 10\.0\.0\.100:8000 to m\d: response ([\d.]+) ms", log)}
            diffs = [ctl[p] - ms for p, ms in client if p in ctl]
            print(f"server delay {delay} s: {len(diffs)}/{len(client)} measured; controller - client (ms): mean {statistics.mean(diffs):.2f} "
                  f"sd {statistics.stdev(diffs):.2f} min {min(diffs):.2f} max {max(diffs):.2f} "
                  f"client mean {statistics.mean(ms for _, ms in client):.1f} ms", flush=True)
        # (1) detection: killed server (RST) and silent link
        link = lab.net.get("m2").intf().link
        port_name = (link.intf2 if link.intf1.node.name == "m2" else link.intf1).name
        for trial in range(5):
            for how in ("kill", "silence"):
                m = "m2"
                if how == "kill":
                    servers[m].kill(); servers[m].wait()
                else:   # the switch port neither receives nor forwards: silence, the port stays up
                    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", "s3", port_name, "no-receive"], check=True)
                    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", "s3", port_name, "no-forward"], check=True)
                t0 = time.monotonic()
                mark = len(lab.log_text())
                wait_until(lambda: not healthy(lab)[m], 5, interval_s=0.02, what="down")
                seen = time.monotonic() - t0
                line = re.search(r"member m2 down: (.*)", lab.log_text()[mark:]).group(1)
                print(f"{how}: out {seen:.2f} s after the {how} (REST poll); log: {line}", flush=True)
                if how == "kill":
                    servers[m] = lab.net.get(m).popen([sys.executable, "-c", SERVER, "0.05"])
                else:
                    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", "s3", port_name, "receive"], check=True)
                    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", "s3", port_name, "forward"], check=True)
                t0 = time.monotonic()
                wait_until(lambda: healthy(lab)[m], 10, interval_s=0.02, what="up")
                print(f"  back {time.monotonic() - t0:.2f} s after restart", flush=True)
        for p in servers.values():
            p.kill(); p.wait()
        bad = [l for l in lab.log_text().splitlines() if "Traceback" in l or " ERROR " in l or "OpenFlow error" in l]
        print("log problems:", bad[:5])


if __name__ == "__main__":
    main()
