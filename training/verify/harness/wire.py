"""Messages between the supervisor, the judge and the candidate's agent, and the plain-data codec.

Shared by all three (the sandboxes import it from /harness). Standard library only, and nothing slow to import:
the agent starts in every run, and ``import json`` alone costs it ~20 ms, so encoding is done here by hand
(strings through the C ``_json`` escaper) and only the judge and the supervisor, which start once, load ``json``.

Framing: a 4-byte big-endian length, then the payload. File descriptors travel with a frame's header
(SCM_RIGHTS) and are queued by the ``Reader`` until the message that announces them takes them.

Plain data is JSON with one-key objects as tags, so every type survives exactly:
``[...]`` list, ``{"t": [...]}`` tuple, ``{"s": [...]}`` set, ``{"f": [...]}`` frozenset, ``{"d": [[k, v], ...]}``
dict, ``{"b": "<hex>"}`` bytes, ``{"c": [re, im]}`` complex, ``{"I": "<hex>"}`` an int beyond 64 bits, and
JSON's own str, int, float (NaN and Infinity included), true, false and null. ``encode`` refuses any other type,
subclasses included; ``decode`` (judge side) builds only these exact types, whatever bytes it is given.
"""

import _socket
import sys
import time
from _json import encode_basestring_ascii

MAX_FRAME = 1 << 26  # 64 MiB: no message is larger
MAX_DEPTH = 200
_INT_BOUND = 1 << 63
_FD_BYTES = 4


class NotPlain(Exception):
    """A value that cannot cross: not one of the plain types, nested too deep, or malformed bytes."""


class FrameTooLarge(Exception):
    pass


def send(sock, payload, fds=()):
    """Writes one frame (blocking, or up to the socket's timeout); ``fds`` travel with its header."""
    header = len(payload).to_bytes(4, "big")
    if fds:
        data = b"".join(fd.to_bytes(_FD_BYTES, sys.byteorder, signed=True) for fd in fds)
        sent = sock.sendmsg([header], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, data)])
        if sent < len(header):
            sock.sendall(header[sent:])
        sock.sendall(payload)
    else:
        sock.sendall(header + payload)


class Reader:
    """Reads frames from a stream socket, keeping what arrives past the current frame for the next one."""

    def __init__(self, sock, accept_fds=False):
        self.sock, self.accept_fds = sock, accept_fds
        self.buffer, self.fds = bytearray(), []

    def frame(self, timeout=None, limit=MAX_FRAME):
        """The next payload; None at end of stream; TimeoutError after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 4:
                size = int.from_bytes(self.buffer[:4], "big")
                if size > limit:
                    raise FrameTooLarge("a message of %d bytes (the limit is %d)" % (size, limit))
                if len(self.buffer) >= 4 + size:
                    payload = bytes(self.buffer[4 : 4 + size])
                    del self.buffer[: 4 + size]
                    return payload
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no message within the time limit")
            self.sock.settimeout(remaining)
            data, ancillary, _, _ = self.sock.recvmsg(1 << 16, _socket.CMSG_SPACE(16 * _FD_BYTES))
            self._take_ancillary(ancillary)
            if not data:
                return None
            self.buffer += data

    def _take_ancillary(self, ancillary):
        for level, kind, data in ancillary:
            if level != _socket.SOL_SOCKET or kind != _socket.SCM_RIGHTS:
                continue
            usable = len(data) - len(data) % _FD_BYTES
            for i in range(0, usable, _FD_BYTES):
                fd = int.from_bytes(data[i : i + _FD_BYTES], sys.byteorder, signed=True)
                if self.accept_fds:
                    self.fds.append(fd)
                else:
                    _close(fd)  # a peer we do not take descriptors from sent one anyway

    def take_fds(self, count):
        if len(self.fds) < count:
            raise ValueError("expected %d file descriptors, got %d" % (count, len(self.fds)))
        taken, self.fds = self.fds[:count], self.fds[count:]
        return taken


def make_undumpable():
    """prctl(PR_SET_DUMPABLE, 0): no other process of our uid may open our /proc/<pid>/mem or fds, or ptrace us.

    Through the bare ``_ctypes`` (a fraction of a millisecond; ``import ctypes`` costs several)."""
    import _ctypes

    class Int(_ctypes._SimpleCData):
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = Int

    prctl = Function(_ctypes.dlsym(_ctypes.dlopen(None), "prctl"))
    prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def _close(fd):
    import os

    try:
        os.close(fd)
    except OSError:
        pass


def encode(value):
    """Plain data as tagged JSON bytes; raises NotPlain naming the first value that cannot cross."""
    parts = []
    _encode(value, parts, 0)
    return "".join(parts).encode("ascii")


def _encode(value, out, depth):
    kind = type(value)
    if kind is str:
        out.append(encode_basestring_ascii(value))
    elif kind is int:
        if -_INT_BOUND < value < _INT_BOUND:
            out.append(int.__repr__(value))
        else:
            out.append('{"I":"%s"}' % int.__format__(value, "x"))
    elif kind is bool or value is None:
        out.append("true" if value is True else "false" if value is False else "null")
    elif kind is float:
        out.append(_float(value))
    elif depth >= MAX_DEPTH:
        raise NotPlain("nested more than %d levels deep" % MAX_DEPTH)
    elif kind is list:
        _sequence(value, out, depth, "[", "]")
    elif kind is tuple:
        _sequence(value, out, depth, '{"t":[', "]}")
    elif kind is set:
        _sequence(value, out, depth, '{"s":[', "]}")
    elif kind is frozenset:
        _sequence(value, out, depth, '{"f":[', "]}")
    elif kind is dict:
        _sequence([[k, v] for k, v in dict.items(value)], out, depth, '{"d":[', "]}")
    elif kind is bytes:
        out.append('{"b":"%s"}' % bytes.hex(value))
    elif kind is complex:
        out.append('{"c":[%s,%s]}' % (_float(value.real), _float(value.imag)))
    else:
        raise NotPlain("a %s.%s" % (kind.__module__, kind.__qualname__))


def _sequence(items, out, depth, opening, closing):
    out.append(opening)
    first = True
    for item in items:
        if not first:
            out.append(",")
        first = False
        _encode(item, out, depth + 1)
    out.append(closing)


def _float(value):
    text = float.__repr__(value)
    return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(text, text)


def decode(payload):
    """Tagged JSON bytes to plain data of exact types; raises NotPlain on anything else (judge and supervisor)."""
    import json

    try:
        return json.loads(payload, object_pairs_hook=_untag)
    except (ValueError, TypeError, RecursionError, MemoryError, UnicodeDecodeError) as exc:
        raise NotPlain("malformed data: %s" % (str(exc)[:200],)) from None


def _untag(pairs):
    if len(pairs) != 1:
        raise ValueError("an object must have exactly one tag")
    tag, value = pairs[0]
    if tag in ("t", "s", "f") and type(value) is list:
        return {"t": tuple, "s": set, "f": frozenset}[tag](value)
    if tag == "d" and type(value) is list and all(type(p) is list and len(p) == 2 for p in value):
        return dict(value)
    if tag == "b" and type(value) is str:
        return bytes.fromhex(value)
    if tag == "I" and type(value) is str:
        return int(value, 16)
    if tag == "c" and type(value) is list and len(value) == 2 and all(type(v) in (int, float) for v in value):
        return complex(value[0], value[1])
    raise ValueError("unknown tag %r" % (tag,))
