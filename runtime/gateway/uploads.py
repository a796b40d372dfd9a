"""Multipart uploads streamed to a file on disk, hashed on the way, refused the moment they pass a cap.

Why not the framework's form parsing: it reads the whole body (spooling the file) before the handler
runs, so an over-size upload would be received in full before it could be refused. Here the
declared ``Content-Length`` is checked before one byte is read, and a body without one (chunked) is
cut off as soon as it passes the cap; the file part goes to a temporary file, never whole into
memory, and the form fields (model, language…) are small and capped too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FIELD_BYTES = 64 * 1024  # all form fields together: a prompt is the largest
MAX_FIELDS = 32


class UploadRefused(Exception):
    """The upload is not accepted: *status* (400, 413) and a message for the caller."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass
class Upload:
    """A parsed upload: the fields, and the file on disk (the caller deletes it with `discard`)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None
    filename: str = ""
    size: int = 0
    sha256: str = ""

    def value(self, name: str, default: str = "") -> str:
        values = self.fields.get(name) or self.fields.get(f"{name}[]") or [default]
        return values[-1]

    def values(self, name: str) -> list[str]:
        return self.fields.get(name, []) + self.fields.get(f"{name}[]", [])

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def check_declared_length(content_length: str | None, cap_bytes: int) -> None:
    """Refuse a body whose declared length is over the cap, before reading it."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise UploadRefused(400, f"Content-Length {content_length[:20]!r} is not a number") from None
    if declared > cap_bytes + FIELD_BYTES:
        raise UploadRefused(413, too_large(cap_bytes), "file")


def too_large(cap_bytes: int) -> str:
    return (f"the upload is over this key's limit of {cap_bytes / 1e6:g} MB; split the media, "
            "or ask for a key with a larger --max-upload-mb")


async def receive_upload(content_type: str | None, body: AsyncIterator[bytes], cap_bytes: int,
                         spool_dir: Path) -> Upload:
    """Stream a ``multipart/form-data`` body: the ``file`` part to a temporary file in *spool_dir*.
    `UploadRefused` (the temporary file removed) for a body that is not multipart, is malformed,
    has more than one file, or passes *cap_bytes* of file data."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, "send the request as multipart/form-data with a 'file' part "
                                 "(as the OpenAI SDKs do)")
    upload = Upload()
    state = _PartState(upload, cap_bytes, spool_dir)
    parser = MultipartParser(boundary, {
        "on_part_begin": state.begin, "on_header_field": state.header_field,
        "on_header_value": state.header_value, "on_header_end": state.header_end,
        "on_headers_finished": state.headers_finished, "on_part_data": state.data, "on_part_end": state.end})
    try:
        async for chunk in body:
            parser.write(chunk)
            if state.refused is not None:
                raise state.refused
        parser.finalize()
    except MultipartParseError as err:
        state.close()
        upload.discard()
        raise UploadRefused(400, f"malformed multipart body ({err})") from None
    except BaseException:
        state.close()
        upload.discard()
        raise
    state.close()
    upload.sha256 = state.digest.hexdigest()
    return upload


class _PartState:
    """The parser's callbacks: where the current part's bytes go."""

    def __init__(self, upload: Upload, cap_bytes: int, spool_dir: Path) -> None:
        self.upload, self.cap, self.spool_dir = upload, cap_bytes, spool_dir
        self.digest = hashlib.sha256()
        self.refused: UploadRefused | None = None
        self._header_name, self._header_value = b"", b""
        self._headers: dict[bytes, bytes] = {}
        self._name, self._is_file = "", False
        self._value = bytearray()
        self._field_bytes = 0
        self._file: IO[bytes] | None = None

    def begin(self) -> None:
        self._headers, self._name, self._is_file, self._value = {}, "", False, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = b"filename" in options or self._name == "file"
        if self._is_file:
            if self.upload.path is not None:
                self._refuse(400, "send exactly one file part", "file")
                return
            handle, name = tempfile.mkstemp(prefix="upload-", dir=self.spool_dir)
            self._file = os.fdopen(handle, "wb")
            self.upload.path = Path(name)
            self.upload.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")[:200]
        elif sum(len(v) for v in self.upload.fields.values()) >= MAX_FIELDS:
            self._refuse(400, f"more than {MAX_FIELDS} form fields")

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.refused is not None:
            return
        chunk = data[start:end]
        if self._is_file and self._file is not None:
            self.upload.size += len(chunk)
            if self.upload.size > self.cap:
                self._refuse(413, too_large(self.cap), "file")
                return
            self.digest.update(chunk)
            self._file.write(chunk)
        else:
            self._field_bytes += len(chunk)
            if self._field_bytes > FIELD_BYTES:
                self._refuse(400, f"the form fields are over {FIELD_BYTES // 1024} KiB", self._name or None)
                return
            self._value += chunk

    def end(self) -> None:
        if self._is_file:
            if self._file is not None:
                self._file.close()
                self._file = None
        elif self._name:
            self.upload.fields.setdefault(self._name, []).append(self._value.decode("utf-8", "replace"))

    def _refuse(self, status: int, message: str, param: str | None = None) -> None:
        if self.refused is None:
            self.refused = UploadRefused(status, message, param)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
