#!/usr/bin/env python3
"""Record one trial on a rigcam box, download its video (checksum verified) and load its frame timing.

    python3 example_trial.py --url http://127.0.0.1:8080 [--token TOKEN] [--seconds 5] [--dest ./data]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rigcam_client import RigcamClient  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("RIGCAM_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--token", default=os.environ.get("RIGCAM_TOKEN"))
    ap.add_argument("--session", default="example")
    ap.add_argument("--label", default="example trial")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--dest", default="./rigcam-data")
    a = ap.parse_args()

    box = RigcamClient(a.url, token=a.token)
    events = box.subscribe(timeout=a.seconds + 30)  # open before starting: no status can be missed
    started = box.start(session=a.session, label=a.label)
    print("recording:", ", ".join(r["path"] for r in started["data"]["recordings"]))
    time.sleep(a.seconds / 2)
    box.mark("halfway")
    time.sleep(a.seconds / 2)
    box.stop()
    stopped = box.wait_for("recording_stopped", stream=events, timeout=a.seconds + 30)
    for r in stopped["data"]["recordings"]:
        path = box.download(r["recording_id"], a.dest)
        rows = [row for row in box.frames(r["recording_id"]) if row["frame_index"] is not None]
        span_s = (rows[-1]["capture_us"] - rows[0]["capture_us"]) / 1e6
        dropped = sum(row["missing_before"] for row in rows)
        fps = (len(rows) - 1) / span_s if span_s > 0 else 0.0
        print("%s: %d frames, %.2f fps, %d dropped, verified %s" % (r.get("camera_id"), len(rows), fps, dropped, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
