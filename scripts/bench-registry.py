"""A minimal in-memory schema registry for scripts/bench-pg (register and look up by id).
The tests use their own stand-in (tests/common/registry.rs); production uses a real registry.

python3 scripts/bench-registry.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

schemas = []
subjects = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            schema = body["schema"]
            if schema not in schemas:
                schemas.append(schema)
            sid = schemas.index(schema) + 1
            subjects.setdefault(parts[1], []).append(sid)
            return self.reply(200, {"id": sid})
        self.reply(404, {"error_code": 404, "message": "no route"})

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and 0 < int(parts[2]) <= len(schemas):
            return self.reply(200, {"schema": schemas[int(parts[2]) - 1]})
        self.reply(404, {"error_code": 40403, "message": "not found"})


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
