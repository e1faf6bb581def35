"""The OpenFlow 1.3 app: a thin adapter between the framework and the pure Balancer.

It is the only code that touches datapaths. Each handler turns an event into plain data,
asks the Balancer, and sends what it returns. Run it with any of:

    osken-manager --ofp-listen-host 127.0.0.1 controller/app.py
    ryu-manager --ofp-listen-host 127.0.0.1 controller/app.py     (where Ryu runs)
    python -m controller --topology topologies/h1h7.json           (the launcher)

Settings come from LB_* environment variables (see controller/core/settings.py).
"""

import contextlib
import errno
import functools
import logging
import os
import signal
import socket
import sys
import time
import traceback
import weakref
from collections import Counter

if __package__ in (None, ""):   # loaded by file path by a manager: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from controller.openflow import framing, wire, xids  # noqa: E402
from controller.service import compat  # noqa: E402
from controller.core.balancer import Balancer  # noqa: E402
from controller.service.capture import Capture, snapshot  # noqa: E402
from controller.openflow.messages import (  # noqa: E402
    COOKIE_BASE,
    COOKIE_MASK,
    EchoRequest,
    FlowDelete,
    FlowMod,
    FlowStatsRequest,
    PacketOut,
    PortStatsRequest,
)
from controller.service.httpd import HttpServer  # noqa: E402
from controller.service.metrics import Metrics  # noqa: E402
from controller.service import pages  # noqa: E402
from controller.core.monitor import FlowStat, PortStat  # noqa: E402
from controller.policies import make_policy  # noqa: E402
from controller.policies.members import member_policy_factory  # noqa: E402
from controller.core.services import HEALTH_INTERVAL_S  # noqa: E402
from controller.service.ratelimit import RateLimit  # noqa: E402
from controller.service.rest import RestApi, api_token  # noqa: E402
from controller.core.settings import ConfigError, Settings  # noqa: E402
from models.bpann import ModelError  # noqa: E402
from controller.core.spec import TopologyError  # noqa: E402
from controller.files import load_spec  # noqa: E402

ofp_event, set_ev_cls = compat.ofp_event, compat.set_ev_cls
HANDSHAKE, CONFIG, MAIN, DEAD = (compat.HANDSHAKE_DISPATCHER, compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER,
                                 compat.DEAD_DISPATCHER)
HANDSHAKE_TIMEOUT_S = 5.0      # a switch is through the handshake in milliseconds
MAX_HANDSHAKES = 32            # connections still in handshake; a new one beyond closes the oldest
ECHO_BOUND_S = 2.0             # how long a datapath id's holder has to answer a rival's echo check
log = logging.getLogger("lb.app")
ERROR_NAMES = xids.ErrorNames(compat.ofproto_v1_3)
MAX_XID = xids.MAX_XID


def _setup_logging(level: str) -> None:
    """Our own timestamped handler for 'lb.*': the managers' root handler prints bare messages."""
    lb = logging.getLogger("lb")
    lb.setLevel(level.upper())
    if not lb.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RateLimit())
        lb.addHandler(handler)
        lb.propagate = False


class OneLineFrameworkErrors(logging.Filter):
    """An error the framework meets on one connection (the framing checks let through only
    what it parses, so this should not happen) is logged with a full traceback as if it were
    a crash; it is not (the other switches are unaffected). One warning line says the same;
    the traceback goes to DEBUG ('lb.framework') and each one is counted
    (lb_framework_errors_total), so an operator or a test can tell that none happened."""

    def __init__(self, counters) -> None:
        super().__init__()
        self.counters = counters

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("os_ken.", "ryu.")):
            text = record.getMessage()
            if record.exc_info or "Traceback (most recent call last)" in text:
                self.counters["framework_errors"] += 1
                logging.getLogger("lb.framework").debug("%s", text, exc_info=record.exc_info)
                cause = (traceback.format_exception_only(*record.exc_info[:2])[-1] if record.exc_info
                         else text.rstrip().splitlines()[-1]).strip()
                head = text.split("Traceback (most recent call last)")[0].splitlines()[0].strip()
                record.msg, record.args, record.exc_info, record.exc_text = f"{head} {cause}", (), None, None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def survives(handler):
    """An exception in one event must never stop the app: log it with its traceback, go on."""
    @functools.wraps(handler)
    def wrapper(self, ev):
        try:
            handler(self, ev)
        except Exception:  # noqa: BLE001 - the point is to catch everything
            log.exception("error handling %s", type(ev).__name__)
    return wrapper


def from_holder(handler):
    """Only events from the connection that holds its datapath id: a rival connection
    claiming an id that is held, or one that was replaced, is never listened to."""
    @functools.wraps(handler)
    def wrapper(self, ev):
        dp = ev.msg.datapath
        if self.datapaths.get(dp.id) is dp:
            handler(self, ev)
    return wrapper


def _answers(msg, kind: type) -> float | None:
    """The poll a statistics reply answers: its request's, found by xid (None if the xid is
    not one of ours of that kind: a switch may send anything)."""
    request = msg.datapath.lb_sent.get(msg.xid) if isinstance(msg.xid, int) else None
    return request.poll if isinstance(request, kind) else None


def _more(msg) -> bool:
    """Whether parts of this multipart reply are still to come (it answers its poll at the last)."""
    return bool((msg.flags or 0) & msg.datapath.ofproto.OFPMPF_REPLY_MORE)


class LoadBalancer(compat.AppBase):
    OFP_VERSIONS = [compat.ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            settings = Settings.from_env()
            _setup_logging(settings.log_level)
            spec = load_spec(settings.topology) if settings.topology else None
            policy = make_policy(settings.policy, settings)
            member_policy = member_policy_factory(settings.service_policy, settings)
            self.capture = Capture(settings.capture) if settings.capture else None
        except (ConfigError, TopologyError) as exc:   # one line, not the manager's traceback
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        self.balancer = Balancer(settings, policy, spec, member_policy=member_policy)
        self.ofp_errors: Counter[tuple[str, str]] = Counter()   # (request kind, error type) -> errors
        self.metrics = Metrics(self.balancer, ofp_errors=self.ofp_errors)
        for handler in logging.getLogger().handlers:     # the framework's records go to the root's
            handler.addFilter(OneLineFrameworkErrors(self.balancer.counters))
        self.datapaths = {}           # datapath id -> the connection that holds it
        self._handshaking = {}        # connection -> when it connected, oldest first
        self._claims = set()          # datapath ids whose holder a rival is checking
        self._closing = weakref.WeakSet()
        self._accept_warned = -float("inf")
        compat.guard_messages(self._admit)
        compat.guard_listener(self._accept_failed, self._cannot_listen)
        log.info("load balancer on %s: policy %s, topology %s, %d candidate paths",
                 compat.FRAMEWORK, settings.policy, settings.topology or "(discovered only)",
                 settings.k_paths)
        if spec is None:
            log.warning("no topology spec: link capacities are taken as %g Mbit/s",
                        settings.default_capacity_mbps)
        self._threads = [compat.hub.spawn(self._every, settings.probe_interval_s, self._probe),
                         compat.hub.spawn(self._every, settings.poll_interval_s, self._poll),
                         compat.hub.spawn(self._every, 1.0, self._expire_handshakes)]
        if self.balancer.services:
            self._threads.append(compat.hub.spawn(self._every, HEALTH_INTERVAL_S, self._health))
        # Each app is made once its port is ours: a second controller that cannot listen must
        # not replace the first one's token file.
        for port, make_app, what in ((settings.rest_port, lambda: self._rest_site(settings), "REST API"),
                                     (settings.metrics_port, self.metrics.wsgi_app, "metrics")):
            if port:
                try:
                    server = HttpServer(port, what)
                except OSError as exc:   # forwarding matters more: go on without it
                    log.error("%s off: cannot listen on 127.0.0.1:%d: %s", what, port, exc.strerror)
                    continue
                self._threads.append(compat.hub.spawn(server.serve_forever, make_app()))
                log.info("%s on http://127.0.0.1:%d/", what, port)
        if self.capture:
            log.info("capturing link metrics and path features to %s", settings.capture)
        signal.signal(signal.SIGHUP, lambda *_: self._reload_model())

    def _rest_site(self, settings):
        """The REST port's application: the API, and the web page at / (controller/service/web)."""
        return pages.Site(RestApi(self.balancer, token=api_token(settings), ofp_errors=self.ofp_errors),
                          pages.load())

    def _reload_model(self):
        """SIGHUP: reload the BPANN model, as POST /api/v1/model/reload does. An exception
        out of a signal handler would end the process: nothing leaves this one."""
        try:
            self.balancer.reload_model()
        except ConfigError as exc:
            log.warning("SIGHUP: %s", exc)
        except ModelError as exc:
            log.warning("SIGHUP: %s; the previous model stays in use", exc)
        except Exception:  # noqa: BLE001 - a bug, not a bad file: its traceback, and go on
            log.exception("SIGHUP: model reload failed; the previous model stays in use")

    def close(self):
        for thread in self._threads:
            compat.hub.kill(thread)
        if self.capture:
            self.capture.close()
        self.balancer.close()

    @staticmethod
    def _every(interval_s, work):
        while True:
            compat.hub.sleep(interval_s)
            try:
                work(time.monotonic())
            except Exception:  # noqa: BLE001
                log.exception("error in periodic %s", work.__name__)

    def _probe(self, now):
        self._send(self.balancer.tick(now))

    def _health(self, now):
        self._send(self.balancer.health(now))

    def _poll(self, now):
        if self.capture:   # the previous poll's replies are in by now
            for table, rows in snapshot(self.balancer, now, time.time()).items():
                self.capture.write(table, rows)
        self._send(self.balancer.poll(now))

    # -- connections -----------------------------------------------------------------------
    def _admit(self, dp, msg) -> bool:
        """Whether the framework may parse this message: one that fails the framing checks,
        or a second FEATURES_REPLY (a connection's datapath id is set once), closes its
        connection, and nothing more from that connection is parsed."""
        if dp in self._closing:
            return False
        reason = framing.problem(msg)
        if reason is None and msg[1] == framing.FEATURES_REPLY and dp.id is not None:
            reason = f"a second FEATURES_REPLY (the connection is datapath {dp.id:#x})"
        if reason is None:
            return True
        self.balancer.counters["ofp_bad_messages"] += 1
        log.warning("OpenFlow connection from %s closed: %s", self._peer(dp), reason)
        self._close(dp)
        return False

    @staticmethod
    def _cannot_listen(address: str, exc: OSError) -> None:
        """The OpenFlow port cannot be had (another listener holds it): the controller stops."""
        log.error("OpenFlow off: cannot listen on %s: %s; stopping", address, exc.strerror or exc)

    def _accept_failed(self, exc):
        """An accept on the OpenFlow port failed. Out of file descriptors, room is made by
        closing the oldest connection still in handshake: the one waiting is accepted next."""
        self.balancer.counters["ofp_accept_errors"] += 1
        if exc.errno in (errno.EMFILE, errno.ENFILE) and self._handshaking:
            self._refuse(next(iter(self._handshaking)),
                         "no file descriptor free (%s): closing the oldest connection in handshake", exc.strerror)
        elif time.monotonic() - self._accept_warned >= 10:
            self._accept_warned = time.monotonic()
            log.warning("OpenFlow port: accept failed (%s); connections wait in the backlog until it succeeds",
                        exc.strerror)

    def _expire_handshakes(self, now):
        for dp, since in list(self._handshaking.items()):
            if now - since < HANDSHAKE_TIMEOUT_S:
                break
            self._refuse(dp, "no handshake within %g s", HANDSHAKE_TIMEOUT_S)

    def _contest(self, holder, rival):
        """A second connection claims a datapath id that is held. As Open vSwitch reconnects
        go, the rival takes over only if the holder is gone: closed, or silent to an echo
        for ECHO_BOUND_S. Either way the topology follows the connection that holds the id."""
        dpid = rival.id
        try:
            if self._answers_echo(holder):
                self._refuse(rival, "datapath id already held by %s, which answers", self._address(holder))
                return
            if rival in self._closing or rival.state == DEAD:
                return
            log.warning("OpenFlow connection from %s replaces %s, which did not answer an echo within %g s",
                        self._peer(rival), self._address(holder), ECHO_BOUND_S)
            if self.datapaths.get(dpid) is holder:
                del self.datapaths[dpid]
                self._send(self.balancer.switch_down(dpid))
            self._close(holder)
            self._hold(rival)
        finally:
            self._claims.discard(dpid)

    def _answers_echo(self, dp) -> bool:
        """Whether the connection answers an echo within ECHO_BOUND_S (the framework's own echo
        reply handler takes the xid off unreplied_echo_requests)."""
        deadline = time.monotonic() + ECHO_BOUND_S
        request = dp.ofproto_parser.OFPEchoRequest(dp)
        xid = dp.set_xid(request)
        dp.lb_sent.add(xid, xids.KINDS[EchoRequest])
        dp.unreplied_echo_requests.append(xid)
        dp.send_msg(request)
        while xid in dp.unreplied_echo_requests and dp.state != DEAD and time.monotonic() < deadline:
            compat.hub.sleep(0.05)
        return dp.state != DEAD and dp not in self._closing and xid not in dp.unreplied_echo_requests

    def _hold(self, dp):
        dp.lb_sent = xids.Sent()      # the requests sent on this connection, by xid
        self.datapaths[dp.id] = dp
        self._send_msg(dp, dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0), xids.PORT_DESC)

    def _refuse(self, dp, why, *args):
        """Close a connection with one line naming the peer and why (a template per reason)."""
        self.balancer.counters["ofp_connections_closed"] += 1
        log.warning("OpenFlow connection from %s closed: " + why, self._peer(dp), *args)
        self._close(dp)

    def _close(self, dp):
        """Close a connection now. Shutting its socket ends the framework's receive loop,
        which then closes the connection as if the peer had gone (the framework's own close()
        only stops sending and waits for the peer to hang up, which a hostile one never does)."""
        self._closing.add(dp)
        self._handshaking.pop(dp, None)
        with contextlib.suppress(OSError):
            dp.socket.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _address(dp) -> str:
        return "%s:%s" % dp.address[:2]

    def _peer(self, dp) -> str:
        if dp.id is None:
            return self._address(dp)
        return f"{self._address(dp)} ({self.balancer.net.name(dp.id)}, dpid {dp.id:#x})"

    # -- events ----------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG)
    @survives
    def _features(self, ev):
        dp = ev.msg.datapath
        holder = self.datapaths.get(dp.id)
        if dp.id in self._claims:
            self._refuse(dp, "a rival claim to this datapath id is being checked")
        elif holder is None:
            self._hold(dp)
        else:
            self._claims.add(dp.id)
            compat.hub.spawn(self._contest, holder, dp)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN)
    @survives
    @from_holder
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        ports = {p.port_no for p in ev.msg.body if self._usable(dp, p)}
        self._send(self.balancer.switch_up(dp.id, ports, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN)
    @survives
    @from_holder
    def _port_status(self, ev):
        dp, port = ev.msg.datapath, ev.msg.desc
        if port.port_no > dp.ofproto.OFPP_MAX:
            return
        up = ev.msg.reason != dp.ofproto.OFPPR_DELETE and self._usable(dp, port)
        self._send(self.balancer.port_changed(dp.id, port.port_no, up, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPStateChange, [HANDSHAKE, MAIN, DEAD])
    @survives
    def _state_change(self, ev):
        dp = ev.datapath
        if ev.state == HANDSHAKE:
            self._handshaking[dp] = time.monotonic()
            if len(self._handshaking) > MAX_HANDSHAKES:
                self._refuse(next(iter(self._handshaking)),
                             "more than %d connections in handshake: closing the oldest", MAX_HANDSHAKES)
            return
        self._handshaking.pop(dp, None)
        if ev.state == DEAD and dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self._send(self.balancer.switch_down(dp.id))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN)
    @survives
    @from_holder
    def _packet_in(self, ev):
        msg = ev.msg
        in_port = msg.match.get("in_port")
        if in_port is None:
            return
        with self.metrics.packet_in_seconds.time():
            messages = self.balancer.packet_in(msg.datapath.id, in_port, bytes(msg.data), time.monotonic(),
                                               msg.cookie)
        self._send(messages)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN)
    @survives
    @from_holder
    def _port_stats(self, ev):
        def seconds(sec, nsec):
            return None if sec == 0xFFFFFFFF else sec + nsec / 1e9
        stats = [PortStat(s.port_no, s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes,
                          s.rx_dropped, s.tx_dropped, seconds(s.duration_sec, s.duration_nsec))
                 for s in ev.msg.body if s.port_no <= ev.msg.datapath.ofproto.OFPP_MAX]
        self.balancer.port_stats(ev.msg.datapath.id, stats, time.monotonic(), _answers(ev.msg, PortStatsRequest))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN)
    @survives
    @from_holder
    def _flow_stats(self, ev):
        stats, others = [], []
        for s in ev.msg.body:
            ports = [a.port for i in s.instructions for a in getattr(i, "actions", [])
                     if hasattr(a, "port")]
            if ports and ports[0] <= ev.msg.datapath.ofproto.OFPP_MAX:
                stats.append(FlowStat(s.cookie, ports[0], s.packet_count, s.byte_count,
                                      s.duration_sec + s.duration_nsec / 1e9))
            else:       # the base entries and SYN watches: to the controller, or nowhere
                others.append(s.cookie)
        self._send(self.balancer.flow_stats(ev.msg.datapath.id, stats, time.monotonic(), others,
                                            _answers(ev.msg, FlowStatsRequest), _more(ev.msg)))

    @set_ev_cls(ofp_event.EventOFPEchoReply, MAIN)
    @survives
    @from_holder
    def _echo_reply(self, ev):
        self.balancer.echo_reply(ev.msg.datapath.id, bytes(ev.msg.data or b""), time.monotonic())

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN)
    @survives
    @from_holder
    def _flow_removed(self, ev):
        self._send(self.balancer.flow_removed(ev.msg.datapath.id, ev.msg.cookie))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG, MAIN])
    @survives
    @from_holder
    def _error(self, ev):
        """An OpenFlow error, tied by its xid to the request it answers: one line, and counted
        by the request's kind and the error's type."""
        msg = ev.msg
        request = msg.datapath.lb_sent.get(msg.xid)
        self.ofp_errors[xids.kind(request), ERROR_NAMES.type(msg.type)] += 1
        log.error("OpenFlow error from %s: %s, in answer to %s (xid %d)", self.balancer.net.name(msg.datapath.id),
                  ERROR_NAMES.describe(msg.type, getattr(msg, "code", None)), xids.describe(request), msg.xid)

    # -- sending ---------------------------------------------------------------------------
    @staticmethod
    def _usable(dp, port):
        ofp = dp.ofproto
        return (port.port_no <= ofp.OFPP_MAX and not port.state & ofp.OFPPS_LINK_DOWN
                and not port.config & ofp.OFPPC_PORT_DOWN)

    def _send(self, messages):
        """One write per switch per event, in the order the core gave: a new flow's flow-mod
        and packet-out for its egress switch go out together. Each message takes the
        connection's next xid (the framework's counter, as its set_xid does) and is remembered
        under it in the connection's ring of sent requests."""
        out = {}
        for m in messages:
            dp = self.datapaths.get(m.dpid)
            if dp is not None:
                dp.xid = xid = (dp.xid + 1) & MAX_XID
                out.setdefault(dp, []).append(self._encode(dp, xid, m))
                dp.lb_sent.add(xid, m if type(m) is FlowMod else xids.remembered(m))   # flow-mods: no call
        for dp, bufs in out.items():
            dp.send(b"".join(bufs))

    @staticmethod
    def _send_msg(dp, msg, kind: str) -> None:
        """Send one of the framework's message objects under the next xid, remembered as `kind`."""
        dp.lb_sent.add(dp.set_xid(msg), kind)
        dp.send_msg(msg)

    @staticmethod
    def _encode(dp, xid, m):
        if isinstance(m, FlowMod):       # the two messages of every new flow: our own encoder
            return wire.flow_mod(m, xid)
        if isinstance(m, PacketOut):
            return wire.packet_out(m, xid)
        ofp, parser = dp.ofproto, dp.ofproto_parser
        if isinstance(m, FlowDelete):
            msg = parser.OFPFlowMod(dp, cookie=m.cookie, cookie_mask=m.cookie_mask, table_id=ofp.OFPTT_ALL,
                                    command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                    match=parser.OFPMatch())
        elif isinstance(m, PortStatsRequest):
            msg = parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY)
        elif isinstance(m, FlowStatsRequest):
            msg = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                             COOKIE_BASE, COOKIE_MASK, parser.OFPMatch())
        elif isinstance(m, EchoRequest):
            msg = parser.OFPEchoRequest(dp, data=m.data)
        else:
            raise TypeError(f"no encoding for {type(m).__name__}")
        msg.set_xid(xid)
        msg.serialize()
        return bytes(msg.buf)
