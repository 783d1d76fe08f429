"""rigcam_client: a client for a rigcam camera box's HTTP API, standard library only (Python 3.8+).

    from rigcam_client import RigcamClient
    box = RigcamClient("http://127.0.0.1:8080", token=None)
    started = box.start(session="mouse42", label="odour A")
    box.mark("reward")
    box.stop()
    stopped = box.wait_for("recording_stopped", timeout=30)
    rec_id = stopped["data"]["recordings"][0]["recording_id"]
    path = box.download(rec_id, "/data/mouse42")          # checked against the box's SHA-256
    rows = box.frames(rec_id)                              # frames.csv as dicts, numbers as numbers

Every method raises RigcamError (HTTP status, message, offending field) when the box refuses, and ChecksumError
when a downloaded file does not match the checksum the box computed when the recording closed.
"""

import csv
import hashlib
import io
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["RigcamClient", "RigcamError", "ChecksumError", "parse_frames_csv"]


class RigcamError(Exception):
    """The box refused a request (or could not be reached: status 0)."""

    def __init__(self, status, message, field=None, body=None):
        super().__init__("HTTP %s: %s" % (status, message))
        self.status = status
        self.message = message
        self.field = field
        self.body = body


class ChecksumError(Exception):
    """A downloaded file's SHA-256 differs from the box's (the partial file is deleted)."""


# Columns of frames.csv that are numbers (the rest stay strings: label, module, device_id, flags, markers).
_INT_COLUMNS = {"trial", "frame_index", "sensor_timestamp_ns", "video_pts", "capture_us", "interval_us",
                "missing_before", "keyframe", "bytes", "pts_90k"}
_FLOAT_COLUMNS = {"record_time_unix", "record_time_mono"}


def _number(column, value):
    if value == "" or value is None:
        return None
    if column in _INT_COLUMNS:
        return int(value)
    if column in _FLOAT_COLUMNS:
        return float(value)
    return value


def parse_frames_csv(text):
    """frames.csv (or a recording's .csv) as a list of dicts, by column name; numeric columns as int/float, empty as None."""
    return [{k: _number(k, v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


class RigcamClient:
    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # ---- plumbing ------------------------------------------------------------------------------
    def _request(self, method, path, body=None, query=None, timeout=None):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            raw = e.read().decode("utf-8", "replace")
            try:
                j = json.loads(raw)
            except ValueError:
                j = {"error": raw}
            raise RigcamError(e.code, j.get("error") or raw, j.get("field"), j) from None
        except (urllib.error.URLError, OSError) as e:
            raise RigcamError(0, "cannot reach %s: %s" % (self.url, getattr(e, "reason", e))) from None

    def _json(self, method, path, body=None, query=None):
        with self._request(method, path, body, query) as r:
            return json.loads(r.read().decode("utf-8"))

    # ---- control -------------------------------------------------------------------------------
    def health(self):
        return self._json("GET", "/api/health")

    def status(self):
        """The box: state, session, trial, cameras, disk."""
        return self._json("GET", "/api/status")

    def start(self, session=None, label=None, metadata=None, trial=None, cameras=None):
        """Start a trial; returns the command result ({ok, command, data: {recordings: [...], ...}})."""
        body = {k: v for k, v in (("session", session), ("label", label), ("metadata", metadata), ("trial", trial), ("cameras", cameras)) if v is not None}
        return self._json("POST", "/api/trials/start", body)

    def stop(self, at_mono_us=None):
        return self._json("POST", "/api/trials/stop", {} if at_mono_us is None else {"at_mono_us": at_mono_us})

    def mark(self, label):
        return self._json("POST", "/api/markers", {"label": label})

    # ---- events (server-sent events) -------------------------------------------------------------
    def events(self, timeout=None):
        """Every status message the box emits from now on, as dicts, until `timeout` seconds pass without one.
        The stream is opened by this call (not at the first iteration), so open it before the action you watch."""
        r = self._request("GET", "/api/events", timeout=timeout or self.timeout)

        def gen():
            try:
                data = []
                for raw in r:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif line == "" and data:
                        yield json.loads("\n".join(data))
                        data = []
            except OSError:  # the read timed out: no event within `timeout`
                return
            finally:
                r.close()

        return gen()

    def subscribe(self, timeout=30.0):
        """An open event stream (generator) to pass to wait_for, opened BEFORE the action whose status you wait for."""
        return self.events(timeout=timeout)

    def wait_for(self, status, predicate=None, timeout=30.0, stream=None):
        """The next status message named `status` (matching `predicate`), or TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for m in stream if stream is not None else self.events(timeout=timeout):
            if m.get("status") == status and (predicate is None or predicate(m)):
                return m
            if time.monotonic() > deadline:
                break
        raise TimeoutError("no %s status within %s s" % (status, timeout))

    # ---- data ----------------------------------------------------------------------------------
    def sessions(self):
        return self._json("GET", "/api/sessions")["sessions"]

    def session(self, session_id, after_trial=None, limit=None):
        q = {k: v for k, v in (("after_trial", after_trial), ("limit", limit)) if v is not None}
        return self._json("GET", "/api/sessions/%d" % session_id, query=q or None)

    def recordings(self, session_id):
        """Every recording of a session (all pages of its trials), with trial number and label."""
        out, after = [], None
        while True:
            page = self.session(session_id, after_trial=after, limit=200)
            for t in page["trials"]:
                for r in t["recordings"]:
                    out.append(dict(r, trial=t["number"], label=t["label"]))
            after = page.get("next_after_trial")
            if after is None:
                return out

    def recording(self, recording_id):
        return self._json("GET", "/api/recordings/%d" % recording_id)

    def checksums(self, recording_id, recheck=False):
        return self._json("GET", "/api/recordings/%d/checksums" % recording_id, query={"recheck": "true"} if recheck else None)

    def _video_checksum(self, recording_id, kind, wait_s):
        deadline = time.monotonic() + wait_s
        while True:
            for f in self.checksums(recording_id)["files"]:
                if f["kind"] == kind:
                    return f
            if time.monotonic() > deadline:
                raise ChecksumError("recording %d has no %s checksum yet (still recording, or not hashed yet)" % (recording_id, kind))
            time.sleep(0.2)

    def download(self, recording_id, dest_dir, format=None, verify=True, checksum_wait_s=30.0):
        """Download a recording's video into dest_dir (the .mp4 when there is one, unless format='ts'); with verify,
        its SHA-256 must equal the one the box stored when the file was closed. Returns the file's path. The file is
        written under a temporary name and renamed only once it is whole and verified; an existing file is not replaced."""
        rec = self.recording(recording_id)["recording"]
        use_mp4 = format == "mp4" or (format is None and rec.get("mp4_path"))
        name = os.path.basename(rec["mp4_path"] if use_mp4 else rec["path"])
        expected = self._video_checksum(recording_id, "mp4" if use_mp4 else "video", checksum_wait_s) if verify else None
        os.makedirs(dest_dir, exist_ok=True)
        final = os.path.join(dest_dir, name)
        if os.path.exists(final):
            raise FileExistsError(final)
        part = final + ".part"
        h = hashlib.sha256()
        size = 0
        with self._request("GET", "/api/recordings/%d/video" % recording_id, query={"format": "mp4" if use_mp4 else "ts"}) as r, open(part, "wb") as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if expected is not None and (h.hexdigest() != expected["sha256"] or size != expected["bytes"]):
            os.unlink(part)
            raise ChecksumError("%s: downloaded %d bytes with SHA-256 %s, the box has %d bytes with %s" % (name, size, h.hexdigest(), expected["bytes"], expected["sha256"]))
        try:
            os.link(part, final)  # fails rather than replace a file that appeared meanwhile
            os.unlink(part)
        except FileExistsError:
            os.unlink(part)
            raise
        except OSError:  # no hard links here (FAT, some network shares): checked, then renamed
            if os.path.exists(final):
                os.unlink(part)
                raise FileExistsError(final) from None
            os.rename(part, final)
        return final

    def frames_csv(self, recording_id):
        """frames.csv (frame timing from the box's database, with markers) as text."""
        with self._request("GET", "/api/recordings/%d/frames.csv" % recording_id) as r:
            return r.read().decode("utf-8")

    def frames(self, recording_id):
        """frames.csv as rows (dicts by column; numbers as int/float; empty cells None)."""
        return parse_frames_csv(self.frames_csv(recording_id))

    # ---- offload -------------------------------------------------------------------------------
    def offload_manifest(self):
        return self._json("GET", "/api/offload/manifest")

    def mark_offloaded(self, recording_id, sha256_by_path):
        """Mark a recording offloaded: pass the SHA-256 of YOUR copy of each of its files, by manifest path."""
        return self._json("POST", "/api/recordings/%d/offloaded" % recording_id, {"sha256": sha256_by_path})
