"""RPi_Logger camera module that is rigcam.

The host runs `python <module_dir>/main_rigcam.py <its launch flags>` (it only runs main_*.py files that use
asyncio and define `async def main`). This replaces the Python process with `rigcam --config CFG module FLAGS`,
so the host's pipes (commands on stdin, statuses on stdout) and signals reach rigcam directly.
Settings: RIGCAM_BIN (default: rigcam on PATH), RIGCAM_CONFIG (default: /etc/rigcam/rigcam.yaml).
"""
import asyncio
import os
import sys


async def main() -> None:
    rigcam = os.environ.get("RIGCAM_BIN", "rigcam")
    config = os.environ.get("RIGCAM_CONFIG", "/etc/rigcam/rigcam.yaml")
    os.execvp(rigcam, [rigcam, "--config", config, "module", *sys.argv[1:]])


if __name__ == "__main__":
    asyncio.run(main())
