"""Serve test files on 127.0.0.1 the way Dify serves tool inputs: signed URLs under /files/<id>/file-preview."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.hits.append(self.path)
                file_id = urlsplit(self.path).path.split("/")[2:3]
                entry = server.files.get(file_id[0]) if file_id else None
                if entry is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, mime = entry
                self.send_response(200)
                self.send_header("Content-Type", mime)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add(self, data: bytes, *, filename: str = "in.png", mime_type: str = "image/png") -> dict:
        """Register ``data`` and return the file parameter exactly as Dify sends it to a plugin."""
        file_id = uuid.uuid4().hex
        self.files[file_id] = (data, mime_type)
        extension = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
        return {
            "dify_model_identity": "__dify__file__",
            "mime_type": mime_type,
            "filename": filename,
            "extension": extension,
            "size": len(data),
            "type": "image",
            "url": f"{self.base_url}/files/{file_id}/file-preview?timestamp=1&nonce=abc&sign=xyz",
        }
