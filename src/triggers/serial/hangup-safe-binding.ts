import { read as fsRead, write as fsWrite } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  autoDetect,
  type BindingInterface,
  type BindingPortInterface,
  type LinuxOpenOptions,
  type LinuxPortBinding,
  type LinuxSetOptions,
  type UpdateOptions,
} from '@serialport/bindings-cpp';
import { unixRead } from '@serialport/bindings-cpp/dist/unix-read.js';

/**
 * The real serialport binding with two fixes. First: on Linux, a read from a tty that has been hung up
 * (USB-serial adapter unplugged, pty peer gone) returns 0 bytes, and bindings-cpp 13 answers a
 * 0-byte read by reading again, forever: 100% CPU, the port never reports the disconnect, and the
 * process can no longer exit (serialport/bindings-cpp#162). The fd is non-blocking, so "no data
 * yet" is EAGAIN, never 0: here 0 becomes an error, which the stream treats as a disconnect.
 * Second, writes: bindings-cpp waits out a full output buffer (EAGAIN) on its poller, but every read
 * re-arms that poller with `uv_poll_start(READABLE)` alone, which replaces the pending WRITABLE wait: a
 * write that filled the buffer while bytes kept arriving never finished, and every later reply queued
 * behind it (seen with a 64 KB line over a pty: the peer's port went deaf). Here a write that cannot go
 * on retries on a short timer instead, so reads and writes never share the poller.
 * Everything else (open, termios, locking, reads' poller) is the library's own code.
 */

const readAsync = promisify(fsRead);
const writeAsync = promisify(fsWrite);
/** Retry delays for a full output buffer: 1 ms doubling to 16 ms (16 ms is ~150 bytes at 9600 baud). */
const WRITE_RETRY_MAX_MS = 16;

export class HangupError extends Error {
  readonly code = 'EIO';
  constructor() {
    super('serial device hung up');
  }
}

const readOrHangup = (async (fd: number, buffer: Buffer, offset: number, length: number, position: null) => {
  const result = await readAsync(fd, buffer, offset, length, position);
  if (result.bytesRead === 0) throw new HangupError();
  return result;
}) as typeof readAsync;

class HangupSafePort implements BindingPortInterface {
  /** The write in progress, for drain() (the stream never runs two writes at once). */
  private writing: Promise<void> | null = null;

  constructor(private readonly inner: LinuxPortBinding) {}

  get openOptions(): Required<LinuxOpenOptions> {
    return this.inner.openOptions;
  }
  get isOpen(): boolean {
    return this.inner.isOpen;
  }
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    return unixRead({ binding: this.inner, buffer, offset, length, fsReadAsync: readOrHangup });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  write(buffer: Buffer): Promise<void> {
    const op = this.writeAll(buffer).finally(() => {
      if (this.writing === op) this.writing = null;
    });
    this.writing = op;
    return op;
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let offset = 0;
    let waitMs = 1;
    while (offset < buffer.length) {
      const fd = this.inner.fd;
      if (!this.inner.isOpen || fd === null) throw new Error('Port is not open');
      try {
        offset += (await writeAsync(fd, buffer, offset, buffer.length - offset)).bytesWritten;
        waitMs = 1;
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { disconnect?: boolean };
        if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'EINTR') {
          await sleep(waitMs);
          waitMs = Math.min(waitMs * 2, WRITE_RETRY_MAX_MS);
          continue;
        }
        // As the library marks them: the device is gone, the stream closes the port.
        if (e.code === 'EBADF' || e.code === 'ENXIO' || e.code === 'EIO' || e.code === 'UNKNOWN') e.disconnect = true;
        throw e;
      }
    }
  }
  update(options: UpdateOptions): Promise<void> {
    return this.inner.update(options);
  }
  set(options: LinuxSetOptions): Promise<void> {
    return this.inner.set(options);
  }
  get(): ReturnType<LinuxPortBinding['get']> {
    return this.inner.get();
  }
  getBaudRate(): Promise<{ baudRate: number }> {
    return this.inner.getBaudRate();
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  async drain(): Promise<void> {
    await this.writing?.catch(() => undefined);
    return this.inner.drain();
  }
}

/** autoDetect()'s binding, with the hang-up fix where the platform binding reads through unixRead. */
export function serialBinding(): BindingInterface {
  const binding = autoDetect();
  if (process.platform !== 'linux') return binding;
  const linux = binding as BindingInterface<LinuxPortBinding, LinuxOpenOptions>;
  return {
    list: () => linux.list(),
    open: async (options: LinuxOpenOptions) => new HangupSafePort(await linux.open(options)),
  };
}
