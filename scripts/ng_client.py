#!/usr/bin/env python3
"""Minimal client for rtpengine's "ng" control protocol (python3 stdlib only).

Wire format: one UDP datagram per message, "<cookie> <bencoded dict>"; the
reply echoes the cookie: "<cookie> <bencoded dict with 'result'>".

Library use:
    from ng_client import NgClient
    ng = NgClient("127.0.0.1", 2223)
    ng.ping()                                   # -> "pong"
    sdp_for_callee = ng.offer(call_id, from_tag, caller_sdp)
    sdp_for_caller = ng.answer(call_id, from_tag, to_tag, callee_sdp)
    ng.delete(call_id)

CLI:
    python3 scripts/ng_client.py [--ng HOST:PORT] ping
    python3 scripts/ng_client.py offer  CALL_ID FROM_TAG SDP_FILE|-
    python3 scripts/ng_client.py answer CALL_ID FROM_TAG TO_TAG SDP_FILE|-
    python3 scripts/ng_client.py delete CALL_ID
    python3 scripts/ng_client.py query  CALL_ID
    python3 scripts/ng_client.py list
    python3 scripts/ng_client.py statistics
offer/answer print the rewritten SDP; the others print the reply dict as JSON.
Environment: RTPENGINE_NG=HOST:PORT (default 127.0.0.1:2223),
RTPENGINE_NG_TIMEOUT=seconds per try (default 2; 3 tries in all).
"""
import json
import os
import socket
import sys
import uuid

# ---------------------------------------------------------------------------
# bencode
# ---------------------------------------------------------------------------


def bencode(obj):
    """Encode int / str / bytes / list / tuple / dict (keys sorted) to bytes."""
    if isinstance(obj, bool):
        obj = int(obj)
    if isinstance(obj, int):
        return b"i%de" % obj
    if isinstance(obj, str):
        obj = obj.encode("utf-8")
    if isinstance(obj, (bytes, bytearray)):
        return b"%d:%s" % (len(obj), bytes(obj))
    if isinstance(obj, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in obj) + b"e"
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            kb = k.encode("utf-8") if isinstance(k, str) else bytes(k)
            items.append((kb, v))
        items.sort(key=lambda kv: kv[0])
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(obj))


def _bdecode_at(data, i):
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = _bdecode_at(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = _bdecode_at(data, i)
            v, i = _bdecode_at(data, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        raw = data[colon + 1:colon + 1 + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        try:
            return raw.decode("utf-8"), colon + 1 + n
        except UnicodeDecodeError:
            return raw, colon + 1 + n
    raise ValueError("bad bencode at offset %d: %r" % (i, data[i:i + 10]))


def bdecode(data):
    """Decode bytes; strings come back as str (bytes if not valid UTF-8)."""
    v, i = _bdecode_at(data, 0)
    if i != len(data):
        raise ValueError("trailing data after bencoded value")
    return v


# ---------------------------------------------------------------------------
# ng client
# ---------------------------------------------------------------------------


class NgError(RuntimeError):
    pass


class NgClient:
    def __init__(self, host="127.0.0.1", port=2223, timeout=2.0, retries=2):
        if host == "localhost":
            host = "127.0.0.1"
        if not host.startswith("127."):
            raise ValueError("ng host must be a 127.0.0.0/8 loopback address, got %r" % host)
        self.addr = (host, int(port))
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def request(self, msg):
        """Send one ng dict, return the reply dict (raises NgError on error)."""
        cookie = uuid.uuid4().hex[:16]
        pkt = cookie.encode() + b" " + bencode(msg)
        last = None
        for _ in range(self.retries + 1):
            self.sock.sendto(pkt, self.addr)
            try:
                while True:
                    data, _src = self.sock.recvfrom(65535)
                    rc, _, body = data.partition(b" ")
                    if rc.decode(errors="replace") == cookie:
                        break  # ignore stale replies to earlier cookies
            except socket.timeout as e:
                last = e
                continue  # rtpengine caches replies by cookie: resend is safe
            reply = bdecode(body)
            if reply.get("result") == "error":
                raise NgError(reply.get("error-reason", "unknown error"))
            return reply
        raise NgError("no reply from %s:%d (%s)" % (self.addr + (last,)))

    def ping(self):
        return self.request({"command": "ping"})["result"]

    def offer(self, call_id, from_tag, sdp, **extra):
        """Offer from caller; returns the SDP to hand to the callee."""
        msg = {"command": "offer", "call-id": call_id, "from-tag": from_tag, "sdp": sdp}
        msg.update(_kw(extra))
        return self.request(msg)["sdp"]

    def answer(self, call_id, from_tag, to_tag, sdp, **extra):
        """Answer from callee (from-tag is still the caller's); returns SDP for the caller."""
        msg = {"command": "answer", "call-id": call_id, "from-tag": from_tag,
               "to-tag": to_tag, "sdp": sdp}
        msg.update(_kw(extra))
        return self.request(msg)["sdp"]

    def delete(self, call_id, **extra):
        msg = {"command": "delete", "call-id": call_id}
        msg.update(_kw(extra))
        return self.request(msg)

    def query(self, call_id):
        return self.request({"command": "query", "call-id": call_id})

    def list(self, limit=32):
        return self.request({"command": "list", "limit": limit})

    def statistics(self):
        return self.request({"command": "statistics"})


def _kw(extra):
    # python keyword args use '_' where ng keys use '-': transport_protocol -> transport-protocol
    return {k.replace("_", "-"): v for k, v in extra.items()}


_default = None


def _client():
    global _default
    if _default is None:
        host, _, port = os.environ.get("RTPENGINE_NG", "127.0.0.1:2223").rpartition(":")
        _default = NgClient(host or "127.0.0.1", int(port),
                            timeout=float(os.environ.get("RTPENGINE_NG_TIMEOUT", "2")))
    return _default


# module-level convenience wrappers (use RTPENGINE_NG or 127.0.0.1:2223)
def ping():
    return _client().ping()


def offer(call_id, from_tag, sdp, **extra):
    return _client().offer(call_id, from_tag, sdp, **extra)


def answer(call_id, from_tag, to_tag, sdp, **extra):
    return _client().answer(call_id, from_tag, to_tag, sdp, **extra)


def delete(call_id, **extra):
    return _client().delete(call_id, **extra)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def _read_sdp(path):
    data = sys.stdin.read() if path == "-" else open(path).read()
    # SDP wants CRLF line ends
    return "\r\n".join(data.replace("\r\n", "\n").rstrip("\n").split("\n")) + "\r\n"


def main(argv):
    args = list(argv)
    if len(args) >= 2 and args[0] == "--ng":
        os.environ["RTPENGINE_NG"] = args[1]
        args = args[2:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    try:
        if cmd == "ping" and not rest:
            print(ping())
        elif cmd == "offer" and len(rest) == 3:
            sys.stdout.write(offer(rest[0], rest[1], _read_sdp(rest[2])))
        elif cmd == "answer" and len(rest) == 4:
            sys.stdout.write(answer(rest[0], rest[1], rest[2], _read_sdp(rest[3])))
        elif cmd == "delete" and len(rest) == 1:
            print(json.dumps(delete(rest[0]), indent=1, default=repr))
        elif cmd == "query" and len(rest) == 1:
            print(json.dumps(_client().query(rest[0]), indent=1, default=repr))
        elif cmd == "list" and not rest:
            print(json.dumps(_client().list(), indent=1, default=repr))
        elif cmd == "statistics" and not rest:
            print(json.dumps(_client().statistics(), indent=1, default=repr))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except NgError as e:
        print("ng error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
