import { read as fsRead } from 'node:fs';
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
 * The real serialport binding with one fix: on Linux, a read from a tty that has been hung up
 * (USB-serial adapter unplugged, pty peer gone) returns 0 bytes, and bindings-cpp 13 answers a
 * 0-byte read by reading again, forever: 100% CPU, the port never reports the disconnect, and the
 * process can no longer exit (serialport/bindings-cpp#162). The fd is non-blocking, so "no data
 * yet" is EAGAIN, never 0: here 0 becomes an error, which the stream treats as a disconnect.
 * Everything else (open, termios, locking, poller, writes) is the library's own code.
 */

const readAsync = promisify(fsRead);

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
    return this.inner.write(buffer);
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
  drain(): Promise<void> {
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
