"""The OpenFlow 1.3 app: a thin adapter between the framework and the pure Balancer.

It is the only code that touches datapaths. Each handler turns an event into plain data,
asks the Balancer, and sends what it returns. Run it with any of:

    osken-manager --ofp-listen-host 127.0.0.1 controller/app.py
    ryu-manager --ofp-listen-host 127.0.0.1 controller/app.py     (where Ryu runs)
    python -m controller --topology topologies/h1h7.json           (the launcher)

Settings come from LB_* environment variables (see controller/settings.py).
"""

import functools
import logging
import os
import signal
import sys
import time
import traceback

if __package__ in (None, ""):   # loaded by file path by a manager: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from controller import compat, wire  # noqa: E402
from controller.balancer import Balancer  # noqa: E402
from controller.capture import Capture, snapshot  # noqa: E402
from controller.messages import (  # noqa: E402
    COOKIE_BASE,
    COOKIE_MASK,
    EchoRequest,
    FlowDelete,
    FlowMod,
    FlowStatsRequest,
    PacketOut,
    PortStatsRequest,
)
from controller.metrics import Metrics  # noqa: E402
from controller.monitor import FlowStat, PortStat  # noqa: E402
from controller.policy import make_policy  # noqa: E402
from controller.rest import RestApi  # noqa: E402
from controller.settings import ConfigError, Settings  # noqa: E402
from models.bpann import ModelError  # noqa: E402
from topologies.spec import load_spec  # noqa: E402

ofp_event, set_ev_cls = compat.ofp_event, compat.set_ev_cls
CONFIG, MAIN, DEAD = compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER, compat.DEAD_DISPATCHER
log = logging.getLogger("lb.app")


def _setup_logging(level: str) -> None:
    """Our own timestamped handler for 'lb.*': the managers' root handler prints bare messages."""
    lb = logging.getLogger("lb")
    lb.setLevel(level.upper())
    if not lb.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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


class LoadBalancer(compat.AppBase):
    OFP_VERSIONS = [compat.ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = Settings.from_env()
        _setup_logging(settings.log_level)
        spec = load_spec(settings.topology) if settings.topology else None
        self.balancer = Balancer(settings, make_policy(settings.policy, settings), spec)
        self.metrics = Metrics(self.balancer)
        for handler in logging.getLogger().handlers:     # the framework's records go to the root's
            handler.addFilter(OneLineFrameworkErrors(self.balancer.counters))
        self.capture = Capture(settings.capture) if settings.capture else None
        self.datapaths = {}
        log.info("load balancer on %s: policy %s, topology %s, %d candidate paths",
                 compat.FRAMEWORK, settings.policy, settings.topology or "(discovered only)",
                 settings.k_paths)
        if spec is None:
            log.warning("no topology spec: link capacities are taken as %g Mbit/s",
                        settings.default_capacity_mbps)
        self._threads = [compat.hub.spawn(self._every, settings.probe_interval_s, self._probe),
                         compat.hub.spawn(self._every, settings.poll_interval_s, self._poll)]
        for port, app, what in ((settings.rest_port, RestApi(self.balancer), "REST API"),
                                (settings.metrics_port, self.metrics.wsgi_app(), "metrics")):
            if port:
                try:
                    server = compat.hub.WSGIServer(("127.0.0.1", port), app)
                except OSError as exc:   # forwarding matters more: go on without it
                    log.error("%s off: cannot listen on 127.0.0.1:%d: %s", what, port, exc.strerror)
                    continue
                self._threads.append(compat.hub.spawn(server.serve_forever))
                log.info("%s on http://127.0.0.1:%d/", what, port)
        if self.capture:
            log.info("capturing link metrics and path features to %s", settings.capture)
        signal.signal(signal.SIGHUP, lambda *_: self._reload_model())

    def _reload_model(self):
        """SIGHUP: reload the BPANN model, as POST /api/v1/model/reload does."""
        try:
            self.balancer.reload_model()
        except (ConfigError, ModelError) as exc:
            log.warning("SIGHUP: %s", exc)

    def close(self):
        for thread in self._threads:
            compat.hub.kill(thread)
        if self.capture:
            self.capture.close()

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

    def _poll(self, now):
        if self.capture:   # the previous poll's replies are in by now
            for table, rows in snapshot(self.balancer, now, time.time()).items():
                self.capture.write(table, rows)
        self._send(self.balancer.poll(now))

    # -- events ----------------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG)
    @survives
    def _features(self, ev):
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN)
    @survives
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        ports = {p.port_no for p in ev.msg.body if self._usable(dp, p)}
        self._send(self.balancer.switch_up(dp.id, ports, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN)
    @survives
    def _port_status(self, ev):
        dp, port = ev.msg.datapath, ev.msg.desc
        if port.port_no > dp.ofproto.OFPP_MAX:
            return
        up = ev.msg.reason != dp.ofproto.OFPPR_DELETE and self._usable(dp, port)
        self._send(self.balancer.port_changed(dp.id, port.port_no, up, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD)
    @survives
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self._send(self.balancer.switch_down(dp.id))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN)
    @survives
    def _packet_in(self, ev):
        msg = ev.msg
        in_port = msg.match.get("in_port")
        if in_port is None:
            return
        with self.metrics.packet_in_seconds.time():
            messages = self.balancer.packet_in(msg.datapath.id, in_port, bytes(msg.data), time.monotonic())
        self._send(messages)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN)
    @survives
    def _port_stats(self, ev):
        def seconds(sec, nsec):
            return None if sec == 0xFFFFFFFF else sec + nsec / 1e9
        stats = [PortStat(s.port_no, s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes,
                          s.rx_dropped, s.tx_dropped, seconds(s.duration_sec, s.duration_nsec))
                 for s in ev.msg.body if s.port_no <= ev.msg.datapath.ofproto.OFPP_MAX]
        self.balancer.port_stats(ev.msg.datapath.id, stats, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN)
    @survives
    def _flow_stats(self, ev):
        stats = []
        for s in ev.msg.body:
            ports = [a.port for i in s.instructions for a in getattr(i, "actions", [])
                     if hasattr(a, "port")]
            if ports:
                stats.append(FlowStat(s.cookie, ports[0], s.packet_count,
                                      s.duration_sec + s.duration_nsec / 1e9))
        self._send(self.balancer.flow_stats(ev.msg.datapath.id, stats, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPEchoReply, MAIN)
    @survives
    def _echo_reply(self, ev):
        self.balancer.echo_reply(ev.msg.datapath.id, bytes(ev.msg.data or b""), time.monotonic())

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN)
    @survives
    def _flow_removed(self, ev):
        self.balancer.flow_removed(ev.msg.datapath.id, ev.msg.cookie)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG, MAIN])
    @survives
    def _error(self, ev):
        msg = ev.msg
        self.balancer.counters["poll_errors"] += 1
        log.error("OpenFlow error from %s: type %d code %d", self.balancer.net.name(msg.datapath.id),
                  msg.type, msg.code)

    # -- sending ---------------------------------------------------------------------------
    @staticmethod
    def _usable(dp, port):
        ofp = dp.ofproto
        return (port.port_no <= ofp.OFPP_MAX and not port.state & ofp.OFPPS_LINK_DOWN
                and not port.config & ofp.OFPPC_PORT_DOWN)

    def _send(self, messages):
        """One write per switch per event, in the order the core gave: a new flow's flow-mod
        and packet-out for its egress switch go out together."""
        out = {}
        for m in messages:
            dp = self.datapaths.get(m.dpid)
            if dp is not None:
                out.setdefault(dp, []).append(self._encode(dp, m))
        for dp, bufs in out.items():
            dp.send(b"".join(bufs))

    @staticmethod
    def _encode(dp, m):
        if isinstance(m, FlowMod):       # the two messages of every new flow: our own encoder
            return wire.flow_mod(m)
        if isinstance(m, PacketOut):
            return wire.packet_out(m)
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
        dp.set_xid(msg)                  # what the framework's send_msg does, minus the write
        msg.serialize()
        return bytes(msg.buf)
