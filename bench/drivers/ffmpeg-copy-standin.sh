#!/bin/bash
# Bench stand-in for `ffmpeg` (bench/pipeline-overhead.ts, copy rows), first on PATH as `ffmpeg` for a rigcam box
# whose camera is a `test` source. It plays a camera that encodes H.264 itself: the test source's own command runs
# upstream as "the camera" (its CPU is not counted, as a camera's encoder is not the box's), and the process rigcam
# supervises is ffmpeg copying that H.264 with its timestamps (RIGCAM_BENCH_COPY_ARGS, one argument per line, input
# on stdin), as for a v4l2 camera with input_format h264 and encoder copy. exec keeps the supervised pid ffmpeg's.
# Any other ffmpeg command runs unchanged.
real=${RIGCAM_BENCH_REAL_FFMPEG:?RIGCAM_BENCH_REAL_FFMPEG not set}
case " $* " in
  *testsrc2=*) ;;
  *) exec "$real" "$@" ;;
esac
mapfile -t copy <<< "${RIGCAM_BENCH_COPY_ARGS:?}"
exec "$real" "${copy[@]}" < <(exec "$real" "$@")
