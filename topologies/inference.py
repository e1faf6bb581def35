"""A workload that looks like LLM inference: a request server that streams its answer token by
token at its own speed, and an open-loop client that replays a seeded Poisson schedule of
requests. docs/workload.md says where the numbers come from and what is approximated.

    python -m topologies.inference serve --name m1 --speed 150 --slots 4 --log m1.jsonl --lifetime 60
    python -m topologies.inference client --schedule schedule.json --client c1 --target 10.0.0.100
                                          --t0 EPOCH --until EPOCH --out c1.jsonl
    python -m topologies.inference sniff --port 8000 --log syn.jsonl --lifetime 30
    curl -N http://10.0.0.100:8000/generate -d '{"prompt_tokens": 100, "output_tokens": 20}'

A request is an HTTP/1.1 POST of {"id", "prompt_tokens", "output_tokens", "prompt"} (the prompt
is padding, PROMPT_BYTES_PER_TOKEN bytes a token, so requests weigh on links as real prompts do).
The server answers at once with its name (X-Member), then waits in a FIFO queue for one of its
`slots`; once admitted it "prefills" for prompt_tokens / (PREFILL_FACTOR x speed) seconds and
then produces one token every 1/speed seconds, each sent as one TOKEN_BYTES line of a chunked
body; a `done N` line ends it. Token k of a request admitted at t is due at
    t + (prompt_tokens / PREFILL_FACTOR + k) / speed,
so a request costs  c = prompt_tokens / PREFILL_FACTOR + output_tokens  token-times of one slot
and a pool's capacity is  sum(slots_i x speed_i) / E[c]  requests a second (capacity()).

Everything here is bounded in time: the server by --lifetime, each client request by --until.
All timestamps are wall-clock (time.time()): the Mininet hosts share the machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import random
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

PORT = 8000
PREFILL_FACTOR = 20         # a slot prefills this many prompt tokens in the time it decodes one
TOKEN_BYTES = 100           # one streamed token: about one OpenAI-style server-sent event
PROMPT_BYTES_PER_TOKEN = 4  # about four characters of English a token
TICK_S = 0.01               # tokens due within one tick go out in one write (bounds the CPU)
MAX_BODY = 1 << 20          # bytes of a request body the server reads at most
MAX_TOKENS = 65536          # the most a request may ask for, prompt or output
CUT = "cut at the run's end"  # a request's error when it still runs at the client's bound


# -- the requests --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lengths:
    """A token count: lognormal with this median and shape, clipped to [1, cap] (a model's
    context or max_tokens)."""
    median: float
    sigma: float
    cap: int

    def draw(self, rng: random.Random) -> int:
        return min(self.cap, max(1, round(rng.lognormvariate(math.log(self.median), self.sigma))))

    def mean(self) -> float:
        """E[min(X, cap)] for X lognormal, in closed form (rounding and the floor of 1 move it
        by well under 1%):  e^(mu + s^2/2) Phi((ln cap - mu - s^2)/s) + cap (1 - Phi((ln cap - mu)/s))."""
        mu, s, z = math.log(self.median), self.sigma, NormalDist()
        return (math.exp(mu + s * s / 2) * z.cdf((math.log(self.cap) - mu - s * s) / s)
                + self.cap * (1 - z.cdf((math.log(self.cap) - mu) / s)))


@dataclass(frozen=True)
class Workload:
    """Prompt and output lengths. Medians from the conversation half of the Azure LLM inference
    trace 2023 (Patel et al., Splitwise, ISCA 2024: median prompt 1020 tokens, median output 129);
    the shapes (sigma) and caps are ours, not fitted (docs/workload.md)."""
    prompt: Lengths = Lengths(median=1020, sigma=1.0, cap=8192)
    output: Lengths = Lengths(median=129, sigma=1.0, cap=2048)
    prefill_factor: float = PREFILL_FACTOR

    def cost(self, prompt_tokens: float, output_tokens: float) -> float:
        """Token-times of one slot a request takes: its prefill plus its decode."""
        return prompt_tokens / self.prefill_factor + output_tokens

    def mean_cost(self) -> float:
        return self.cost(self.prompt.mean(), self.output.mean())


@dataclass(frozen=True)
class Member:
    name: str
    speed: float    # tokens a second, per slot
    slots: int


def capacity(members: list[Member], workload: Workload = Workload()) -> float:
    """Requests a second the pool serves when every slot is always busy:
    sum(slots_i x speed_i) / E[c]."""
    return sum(m.slots * m.speed for m in members) / workload.mean_cost()


@dataclass(frozen=True)
class Request:
    id: int
    at_s: float       # seconds after the schedule's start
    client: str
    prompt_tokens: int
    output_tokens: int


def schedule(seed: int, rate_per_s: float, duration_s: float, clients: list[str],
             workload: Workload = Workload()) -> list[Request]:
    """Poisson arrivals at rate_per_s over duration_s, each from a random client. Sizes and
    arrival times come from two generators, so request n has the same size at every load."""
    if rate_per_s <= 0 or not clients:
        raise ValueError("a schedule needs a positive rate and at least one client")
    times, sizes = random.Random(f"{seed}:times"), random.Random(f"{seed}:sizes")
    out: list[Request] = []
    t = times.expovariate(rate_per_s)
    while t < duration_s:
        out.append(Request(len(out), round(t, 4), times.choice(clients),
                           workload.prompt.draw(sizes), workload.output.draw(sizes)))
        t += times.expovariate(rate_per_s)
    return out


def write_schedule(path: Path, requests: list[Request]) -> None:
    path.write_text(json.dumps([asdict(r) for r in requests]) + "\n")


def read_schedule(path: Path) -> list[Request]:
    return [Request(**r) for r in json.loads(Path(path).read_text())]


# -- the server ----------------------------------------------------------------------------------
class Slots:
    """A fixed number of slots taken first come, first served (asyncio.Semaphore lets a newcomer
    take a slot freed while earlier waiters are still being woken)."""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> None:
        if self.free and not self.waiting:
            self.free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()      # granted as it was cancelled: pass the slot on
            else:
                self.waiting.remove(future)
            raise

    def release(self) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1

    @property
    def queued(self) -> int:
        return len(self.waiting)


class BadRequest(ValueError):
    pass


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """(method, path, body) of one HTTP/1.1 request; BadRequest names what is wrong."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"request line {lines[0][:60]!r}")
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise BadRequest(f"content-length {length[:20]!r} (at most {MAX_BODY})")
    return parts[0], parts[1], await reader.readexactly(int(length))


def parse_generate(body: bytes) -> tuple[str, int, int]:
    """(id, prompt_tokens, output_tokens) of a /generate body."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body is not a JSON object")
    counts = []
    for key in ("prompt_tokens", "output_tokens"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
            raise BadRequest(f"{key} must be a whole number in 1..{MAX_TOKENS}")
        counts.append(value)
    return str(data.get("id", ""))[:40], counts[0], counts[1]


def token_line(k: int) -> bytes:
    return f"token {k} ".encode().ljust(TOKEN_BYTES - 1, b".") + b"\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Server:
    """One member: `slots` requests decode at once at `speed` tokens a second each; the rest
    wait in FIFO order. Each request's times go to the log as one JSON line."""

    def __init__(self, name: str, speed: float, slots: int, log, workload: Workload = Workload()) -> None:
        if speed <= 0 or slots < 1:
            raise ValueError("speed must be positive and slots at least 1")
        self.name, self.speed, self.workload = name, speed, workload
        self.slots = Slots(slots)
        self.log = log

    def record(self, **fields) -> None:
        self.log.write(json.dumps({"member": self.name, **fields}) + "\n")
        self.log.flush()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        try:
            method, path, body = await asyncio.wait_for(read_request(reader), 10)
            if method == "GET" and path == "/health":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            elif method == "POST" and path == "/generate":
                await self.generate(peer, *parse_generate(body), writer)
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except BadRequest as exc:
            self.record(peer=peer, status="bad request", error=str(exc)[:200], at=time.time())
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, OSError):
            pass        # a peer that connects and goes (a health check) or stalls
        finally:
            writer.close()

    async def generate(self, peer: str, rid: str, prompt: int, output: int, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        arrived = time.time()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                     b"X-Member: %s\r\nConnection: close\r\n\r\n" % self.name.encode())
        queued = self.slots.queued
        await self.slots.acquire()
        admitted, start = time.time(), loop.time()
        first = status = None
        sent = 0
        try:
            offset = self.workload.cost(prompt, 0)        # prefill, in token-times
            while sent < output:
                due = min(output, int((loop.time() - start) * self.speed - offset))
                if due > sent:
                    writer.write(chunk(b"".join(token_line(k) for k in range(sent + 1, due + 1))))
                    first, sent = first or time.time(), due
                if sent < output:
                    next_due = start + (offset + sent + 1) / self.speed
                    await asyncio.sleep(max(next_due - loop.time(), TICK_S))
                if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_BODY:
                    raise ConnectionResetError("client gone")
            status = "ok"
        except OSError:
            status = "client gone"
        finally:
            generated = time.time()
            self.slots.release()
            self.record(id=rid, peer=peer, prompt=prompt, output=output, sent=sent, queued_ahead=queued,
                        arrived=arrived, admitted=admitted, first=first, generated=generated, status=status)
        writer.write(chunk(b"done %d\n" % sent) + b"0\r\n\r\n")


async def serve(name: str, speed: float, slots: int, log_path: Path, lifetime_s: float,
                port: int = PORT, host: str = "0.0.0.0") -> None:
    with open(log_path, "a") as log:
        server = Server(name, speed, slots, log)
        listener = await asyncio.start_server(server.handle, host, port, backlog=512)
        server.record(status="listening", at=time.time(), speed=speed, slots=slots, port=port)
        async with listener:
            await asyncio.sleep(lifetime_s)


# -- the client ----------------------------------------------------------------------------------
async def fetch(request: Request, target: str, port: int, t0: float, until: float) -> dict:
    """Send one request at t0 + its time; its outcome (times are seconds after t0)."""
    await asyncio.sleep(max(0.0, t0 + request.at_s - time.time()))
    start = time.time()
    out = {**asdict(request), "target": target, "start": start - t0, "ttft": None, "last": None,
           "end": None, "member": None, "tokens": 0, "ok": False, "error": None}
    body = json.dumps({"id": request.id, "prompt_tokens": request.prompt_tokens,
                       "output_tokens": request.output_tokens,
                       "prompt": "x" * (request.prompt_tokens * PROMPT_BYTES_PER_TOKEN)}).encode()
    writer = None
    try:
        async with asyncio.timeout(max(0.0, until - time.time())):
            reader, writer = await asyncio.open_connection(target, port)
            writer.write(b"POST /generate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (target.encode(), len(body), body))
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise BadRequest(f"answered {head.splitlines()[0][:60]!r}")
            out["member"] = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                                  if line.lower().startswith("x-member:")), None)
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip() or b"0", 16)
                if size == 0:
                    raise BadRequest("answer ended without a done line")
                data = (await reader.readexactly(size + 2))[:-2]
                tokens = data.count(b"\ntoken ") + data.startswith(b"token ")
                if tokens and out["ttft"] is None:
                    out["ttft"] = time.time() - start
                out["tokens"] += tokens
                out["last"] = time.time() - t0 if tokens else out["last"]
                if data.startswith(b"done ") or b"\ndone " in data:
                    out["end"] = time.time() - t0
                    out["ok"] = out["tokens"] == request.output_tokens
                    if not out["ok"]:
                        out["error"] = f"{out['tokens']} of {request.output_tokens} tokens"
                    break
    except TimeoutError:
        out["error"] = CUT
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        if writer is not None:
            writer.close()
    return out


async def run_client(requests: list[Request], targets: list[str], port: int, t0: float, until: float,
                     out_path: Path) -> None:
    """Every request at its time, none waiting for another (open loop); one JSON line each.
    Request n goes to targets[n % len(targets)]: one VIP, or members in turn (client-side
    round robin, for a pool without a VIP)."""
    with open(out_path, "w") as out:
        for done in asyncio.as_completed([fetch(r, targets[r.id % len(targets)], port, t0, until)
                                          for r in requests]):
            out.write(json.dumps(await done) + "\n")
            out.flush()


# -- who still sends to a member: a passive capture -----------------------------------------------
ETH_P_IP = 0x0800


def syn_of(frame: bytes) -> tuple[str, int] | None:
    """(source address, destination port) of an Ethernet frame that is a TCP SYN (not a
    SYN-ACK), else None."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if ihl < 20 or len(frame) < 14 + ihl + 14:
        return None
    dport, flags = struct.unpack_from("!H", frame, 14 + ihl + 2)[0], frame[14 + ihl + 13]
    return (socket.inet_ntoa(frame[26:30]), dport) if flags & 0x12 == 0x02 else None


def sniff(port: int, log_path: Path, lifetime_s: float) -> None:
    """Log the time and source of every TCP SYN to `port` this host receives: the connections
    still sent to a member whose server is gone (its kernel refuses them, so no server log
    shows them)."""
    deadline = time.monotonic() + lifetime_s
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)) as s, \
            open(log_path, "a") as log:
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                frame, (_, _, kind, *_) = s.recvfrom(2048)
            except TimeoutError:
                break
            syn = syn_of(frame) if kind != socket.PACKET_OUTGOING else None
            if syn and syn[1] == port:
                log.write(json.dumps({"syn": time.time(), "src": syn[0]}) + "\n")
                log.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m topologies.inference", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="a member's request server")
    s.add_argument("--name", required=True)
    s.add_argument("--speed", type=float, required=True, help="tokens a second, per slot")
    s.add_argument("--slots", type=int, default=4)
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--log", type=Path, required=True)
    s.add_argument("--lifetime", type=float, required=True, help="seconds until the server exits")
    c = sub.add_parser("client", help="replay one client host's share of a schedule")
    c.add_argument("--schedule", type=Path, required=True)
    c.add_argument("--client", required=True)
    c.add_argument("--target", required=True, help="the VIP, or members' addresses, comma-separated")
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--t0", type=float, required=True, help="the schedule's start, as a Unix time")
    c.add_argument("--until", type=float, required=True, help="Unix time at which unfinished requests are cut")
    c.add_argument("--out", type=Path, required=True)
    n = sub.add_parser("sniff", help="log TCP SYNs to a port")
    n.add_argument("--port", type=int, default=PORT)
    n.add_argument("--log", type=Path, required=True)
    n.add_argument("--lifetime", type=float, required=True)
    args = p.parse_args(argv)
    if args.command == "serve":
        if args.speed <= 0 or args.slots < 1 or not 0 < args.lifetime <= 7200:
            p.error("--speed must be positive, --slots at least 1, --lifetime in (0, 7200]")
        asyncio.run(serve(args.name, args.speed, args.slots, args.log, args.lifetime, args.port))
    elif args.command == "client":
        if not args.t0 < args.until <= time.time() + 7200:
            p.error("--until must come after --t0 and within two hours")
        mine = [r for r in read_schedule(args.schedule) if r.client == args.client]
        asyncio.run(run_client(mine, args.target.split(","), args.port, args.t0, args.until, args.out))
    else:
        sniff(args.port, args.log, min(args.lifetime, 7200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
