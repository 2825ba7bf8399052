"""A Kafka-protocol SASL/SCRAM-SHA-256 gate for tests, written for Sluice.

The test broker (tansu 0.6) has no SASL. This stand-in sits between a TLS terminator and the
broker: it answers SaslHandshake and SaslAuthenticate itself (the server side of RFC 5802 SCRAM),
adds those two APIs to the broker's ApiVersions answer, refuses every other request until the
client has authenticated, and afterwards passes bytes through unchanged.

    python3 sasl_proxy.py LISTEN_PORT BROKER_PORT USER PASSWORD

Prints "ready" once it listens, and nothing after (the reader may close the pipe).
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import sys
import threading
import time

API_SASL_HANDSHAKE = 17
API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36
MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096

# Kafka error codes used here.
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(sock):
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    return read_exact(sock, size)


def send_frame(sock, body):
    sock.sendall(struct.pack(">i", len(body)) + body)


def uvarint(data, at):
    value, shift = 0, 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def put_uvarint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_header(frame):
    """api_key, api_version, correlation_id, offset of the body (header v1, or v2 when flexible)."""
    api_key, version, correlation = struct.unpack(">hhi", frame[:8])
    (client_len,) = struct.unpack(">h", frame[8:10])
    at = 10 + max(client_len, 0)
    flexible = (api_key == API_VERSIONS and version >= 3) or (
        api_key == API_SASL_AUTHENTICATE and version >= 2
    )
    if flexible:
        count, at = uvarint(frame, at)
        for _ in range(count):
            _tag, at = uvarint(frame, at)
            size, at = uvarint(frame, at)
            at += size
    return api_key, version, correlation, at


def add_sasl_apis(body, version):
    """The broker's ApiVersions response body with SaslHandshake 0-1 and SaslAuthenticate 0-1."""
    (error,) = struct.unpack(">h", body[:2])
    if error != 0:
        return body
    added = {API_SASL_HANDSHAKE: (0, 1), API_SASL_AUTHENTICATE: (0, 1)}
    if version >= 3:
        count, at = uvarint(body, 2)
        entries = []
        for _ in range(count - 1):
            key, lo, hi = struct.unpack(">hhh", body[at : at + 6])
            at += 6
            tags, at = uvarint(body, at)
            assert tags == 0, "tagged fields in an ApiVersions entry"
            if key not in added:
                entries.append((key, lo, hi))
        entries += [(k, lo, hi) for k, (lo, hi) in added.items()]
        out = body[:2] + put_uvarint(len(entries) + 1)
        for key, lo, hi in entries:
            out += struct.pack(">hhh", key, lo, hi) + b"\x00"
        return out + body[at:]
    (count,) = struct.unpack(">i", body[2:6])
    at = 6
    entries = []
    for _ in range(count):
        key, lo, hi = struct.unpack(">hhh", body[at : at + 6])
        at += 6
        if key not in added:
            entries.append((key, lo, hi))
    entries += [(k, lo, hi) for k, (lo, hi) in added.items()]
    out = body[:2] + struct.pack(">i", len(entries))
    for key, lo, hi in entries:
        out += struct.pack(">hhh", key, lo, hi)
    return out + body[at:]


def kafka_string(s):
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


class Scram:
    """Server side of one SCRAM-SHA-256 exchange."""

    def __init__(self, user, password):
        self.user = user
        self.salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, ITERATIONS)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        self.stored_key = hashlib.sha256(client_key).digest()
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.first_bare = None
        self.server_first = None
        self.nonce = None

    def first(self, message):
        """client-first-message → server-first-message, or None when the user is unknown."""
        text = message.decode()
        bare = text.split(",", 2)[2]
        fields = dict(part.split("=", 1) for part in bare.split(","))
        if fields.get("n") != self.user:
            return None
        self.first_bare = bare
        self.nonce = fields["r"] + base64.b64encode(os.urandom(18)).decode()
        salt = base64.b64encode(self.salt).decode()
        self.server_first = f"r={self.nonce},s={salt},i={ITERATIONS}"
        return self.server_first.encode()

    def final(self, message):
        """client-final-message → server-final-message, or None when the proof is wrong."""
        text = message.decode()
        without_proof, proof = text.rsplit(",p=", 1)
        fields = dict(part.split("=", 1) for part in without_proof.split(","))
        if fields.get("r") != self.nonce:
            return None
        auth = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.digest(self.stored_key, auth, "sha256")
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key):
            return None
        server_signature = hmac.digest(self.server_key, auth, "sha256")
        return b"v=" + base64.b64encode(server_signature)


def authenticate_response(correlation, version, error, message, auth_bytes):
    body = struct.pack(">h", error)
    body += struct.pack(">h", -1) if message is None else kafka_string(message)
    body += struct.pack(">i", len(auth_bytes)) + auth_bytes
    if version >= 1:
        body += struct.pack(">q", 0)
    return struct.pack(">i", correlation) + body


def serve(client, broker_port, user, password):
    upstream = socket.create_connection(("127.0.0.1", broker_port))
    scram = None
    step = 0
    try:
        while True:
            frame = read_frame(client)
            api_key, version, correlation, body_at = parse_header(frame)
            if api_key == API_VERSIONS:
                send_frame(upstream, frame)
                answer = read_frame(upstream)
                # The ApiVersions response header is always v0: the correlation id alone.
                send_frame(client, answer[:4] + add_sasl_apis(answer[4:], version))
            elif api_key == API_SASL_HANDSHAKE:
                (size,) = struct.unpack(">h", frame[body_at : body_at + 2])
                mechanism = frame[body_at + 2 : body_at + 2 + size].decode()
                error = 0 if mechanism == MECHANISM else UNSUPPORTED_SASL_MECHANISM
                body = struct.pack(">h", error) + struct.pack(">i", 1) + kafka_string(MECHANISM)
                send_frame(client, struct.pack(">i", correlation) + body)
                if error:
                    return
                scram, step = Scram(user, password), 0
            elif api_key == API_SASL_AUTHENTICATE and scram is not None:
                (size,) = struct.unpack(">i", frame[body_at : body_at + 4])
                token = frame[body_at + 4 : body_at + 4 + size]
                answer = scram.first(token) if step == 0 else scram.final(token)
                if answer is None:
                    send_frame(
                        client,
                        authenticate_response(
                            correlation,
                            version,
                            SASL_AUTHENTICATION_FAILED,
                            "Authentication failed during authentication due to invalid "
                            "credentials with SASL mechanism SCRAM-SHA-256",
                            b"",
                        ),
                    )
                    # As a broker does, close only after a delay, so the client reads the answer.
                    time.sleep(0.5)
                    return
                send_frame(client, authenticate_response(correlation, version, 0, None, answer))
                step += 1
                if step == 2:
                    break
            else:
                # Kafka closes a connection that skips authentication.
                return
        pump_both(client, upstream)
    except (EOFError, OSError):
        pass
    finally:
        for s in (client, upstream):
            try:
                s.close()
            except OSError:
                pass


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def pump_both(client, upstream):
    other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    other.start()
    pump(client, upstream)
    other.join()


def main():
    listen_port, broker_port = int(sys.argv[1]), int(sys.argv[2])
    user, password = sys.argv[3], sys.argv[4]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(
            target=serve, args=(client, broker_port, user, password), daemon=True
        ).start()


if __name__ == "__main__":
    main()
