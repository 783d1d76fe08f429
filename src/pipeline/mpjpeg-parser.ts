/**
 * Splits ffmpeg's `-f mpjpeg` output into JPEG images. Each part is
 * `--<boundary>\r\nContent-type: image/jpeg\r\nContent-length: N\r\n\r\n<N bytes>\r\n`; the length is trusted,
 * never a scan for JPEG markers.
 */
export class MpjpegParser {
  private buf: Buffer = Buffer.alloc(0);
  private need: number | null = null;

  constructor(private readonly onImage: (jpeg: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.need === null) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > 4096) throw new Error('mpjpeg: part header too long');
          return;
        }
        const head = this.buf.subarray(0, end).toString('latin1');
        const m = /content-length:\s*(\d+)/i.exec(head);
        if (!m) throw new Error(`mpjpeg: part without Content-length: ${JSON.stringify(head.slice(0, 200))}`);
        this.need = Number(m[1]);
        this.buf = this.buf.subarray(end + 4);
      }
      if (this.buf.length < this.need + 2) return;
      this.onImage(Buffer.from(this.buf.subarray(0, this.need)));
      this.buf = this.buf.subarray(this.need + 2); // the part's trailing CRLF
      this.need = null;
    }
  }
}
