"""Tests of rigcam_client against a real `rigcam serve` (started by test/clients/python-client.test.ts).

Environment: RIGCAM_URL, RIGCAM_TOKEN, RIGCAM_ROOT (the box's recordings root, to compare files byte for byte).
"""
import hashlib
import os
import tempfile
import time
import unittest

from rigcam_client import ChecksumError, RigcamClient, RigcamError, parse_frames_csv

URL = os.environ["RIGCAM_URL"]
TOKEN = os.environ["RIGCAM_TOKEN"]
ROOT = os.environ["RIGCAM_ROOT"]
LABEL = 'odour A, "quoted" \u2014 \u00fcn\u00efc\u00f6d\u00e9 \U0001F42D'


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class ClientTest(unittest.TestCase):
    box = RigcamClient(URL, token=TOKEN)
    trial = None  # one trial recorded for the whole class

    @classmethod
    def setUpClass(cls):
        events = cls.box.subscribe(timeout=60)
        started = cls.box.start(session="pyclient", label=LABEL, metadata={"subject": "m42"})
        time.sleep(1.0)
        cls.box.mark("reward, left")
        time.sleep(1.0)
        cls.box.stop()
        seen = []

        def keep(stream):
            for m in stream:
                seen.append(m)
                yield m

        stopped = cls.box.wait_for("recording_stopped", stream=keep(events), timeout=60)
        cls.trial = {"started": started, "stopped": stopped, "seen": seen}
        # The box hashes a recording's files once they are final, just after recording_stopped: a test that changed
        # a file before that would have its change hashed as the original.
        rec_id = stopped["data"]["recordings"][0]["recording_id"]
        deadline = time.monotonic() + 30
        while not {"video", "csv", "sidecar"} <= {f["kind"] for f in cls.box.checksums(rec_id)["files"]}:
            if time.monotonic() > deadline:
                raise TimeoutError("no checksums for recording %d" % rec_id)
            time.sleep(0.05)

    def rec_id(self):
        return self.trial["stopped"]["data"]["recordings"][0]["recording_id"]

    def test_status_and_health(self):
        self.assertTrue(self.box.health()["ok"])
        st = self.box.status()
        self.assertIn("cameras", st)
        self.assertEqual([c["camera_id"] for c in st["cameras"]], ["cam0"])

    def test_wrong_token_and_bad_input_are_refused(self):
        with self.assertRaises(RigcamError) as e:
            RigcamClient(URL, token="wrong-token-wrong-token").status()
        self.assertEqual(e.exception.status, 401)
        with self.assertRaises(RigcamError) as e:
            self.box.start(session="../etc")
        self.assertEqual(e.exception.status, 400)
        self.assertTrue(e.exception.field.startswith("body."), e.exception.field)
        with self.assertRaises(RigcamError) as e:
            self.box.stop()  # not recording
        self.assertEqual(e.exception.status, 409)
        with self.assertRaises(RigcamError) as e:
            RigcamClient("http://127.0.0.1:1", timeout=2).status()
        self.assertEqual(e.exception.status, 0)

    def test_events_carry_the_trial(self):
        names = [m["status"] for m in self.trial["seen"]]
        self.assertIn("recording_started", names)
        self.assertIn("marker", names)
        marker = next(m for m in self.trial["seen"] if m["status"] == "marker")
        self.assertEqual(marker["data"]["label"], "reward, left")
        self.assertEqual(self.trial["stopped"]["data"]["state"], "complete")

    def test_sessions_and_recordings(self):
        s = next(s for s in self.box.sessions() if s["name"] == self.trial["stopped"]["data"]["session"])
        recs = self.box.recordings(s["id"])
        self.assertEqual([r["id"] for r in recs], [self.rec_id()])
        self.assertEqual(recs[0]["label"], LABEL)

    def test_download_is_verified_and_equals_the_box_file(self):
        rec = self.box.recording(self.rec_id())["recording"]
        with tempfile.TemporaryDirectory() as d:
            path = self.box.download(self.rec_id(), d)
            self.assertEqual(sha256(path), sha256(os.path.join(ROOT, rec["path"])))
            self.assertEqual(os.listdir(d), [os.path.basename(rec["path"])])
            with self.assertRaises(FileExistsError):
                self.box.download(self.rec_id(), d)

    def test_a_file_changed_on_the_box_fails_the_download_and_leaves_nothing(self):
        rec = self.box.recording(self.rec_id())["recording"]
        video = os.path.join(ROOT, rec["path"])
        with open(video, "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 0xFF]))
        try:
            with tempfile.TemporaryDirectory() as d:
                with self.assertRaises(ChecksumError):
                    self.box.download(self.rec_id(), d)
                self.assertEqual(os.listdir(d), [])
            check = self.box.checksums(self.rec_id(), recheck=True)
            self.assertFalse(check["ok"])
        finally:
            with open(video, "r+b") as f:
                f.seek(1000)
                f.write(b)
        self.assertTrue(self.box.checksums(self.rec_id(), recheck=True)["ok"])

    def test_frames_csv_to_rows(self):
        rec = self.box.recording(self.rec_id())["recording"]
        rows = self.box.frames(self.rec_id())
        frames = [r for r in rows if r["frame_index"] is not None]
        self.assertEqual(len(frames), rec["frame_count"])
        self.assertEqual([r["frame_index"] for r in frames], list(range(1, rec["frame_count"] + 1)))
        self.assertTrue(all(isinstance(r["capture_us"], int) and isinstance(r["record_time_unix"], float) for r in frames))
        self.assertTrue(all(b["capture_us"] > a["capture_us"] for a, b in zip(frames, frames[1:])))
        self.assertTrue(all(r["label"] == LABEL for r in frames), "labels with commas, quotes and unicode survive the CSV")
        self.assertEqual([r["markers"] for r in rows if r["markers"]], ["reward, left"])
        # The same parser reads the recording's own CSV beside the video.
        with open(os.path.join(ROOT, rec["csv_path"]), encoding="utf-8") as f:
            own = parse_frames_csv(f.read())
        self.assertEqual([r["capture_us"] for r in own], [r["capture_us"] for r in frames])

    def test_offload_marks_only_on_matching_hashes(self):
        m = self.box.offload_manifest()
        entry = next(r for r in m["recordings"] if r["id"] == self.rec_id())
        wrong = {f["path"]: "0" * 64 for f in entry["files"]}
        with self.assertRaises(RigcamError) as e:
            self.box.mark_offloaded(self.rec_id(), wrong)
        self.assertEqual(e.exception.status, 409)
        self.assertIsNone(self.box.recording(self.rec_id())["recording"]["offloaded_at"])


if __name__ == "__main__":
    unittest.main()
