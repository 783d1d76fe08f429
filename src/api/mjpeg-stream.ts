import type { Response } from 'express';
import type { CameraPreview } from '../pipeline/preview.ts';

export const MJPEG_BOUNDARY = 'rigcamframe';

function part(jpeg: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`), jpeg, Buffer.from('\r\n')]);
}

/**
 * Serve a camera's preview images as multipart/x-mixed-replace until the client goes. A slow client (a phone on
 * bad Wi-Fi) skips images while its socket is full instead of piling them up in memory.
 * Returns false when the preview has no room for another viewer (nothing written).
 */
export function serveMjpeg(res: Response, preview: CameraPreview): boolean {
  let choked = false;
  let started = false;
  let first: Buffer | null = null;
  const send = (jpeg: Buffer): void => {
    if (choked || res.writableEnded) return;
    if (!res.write(part(jpeg))) {
      choked = true;
      res.once('drain', () => (choked = false));
    }
  };
  const unsubscribe = preview.subscribe({
    // The preview's latest image comes during subscribe, before the head is written: kept for just after it.
    image: (jpeg) => (started ? send(jpeg) : (first = jpeg)),
    end: () => res.end(),
  });
  if (!unsubscribe) return false;
  res.writeHead(200, {
    'content-type': `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  started = true;
  if (first) send(first);
  res.on('close', unsubscribe);
  return true;
}
