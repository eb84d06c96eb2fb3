// libc through koffi FFI, for the socket calls Node's dgram does not expose (SO_BINDTODEVICE, batched I/O).
// One loaded library per thread; each module declares the functions it needs with `libc().func(...)`.
import { constants } from 'node:os';
import koffi, { type LibraryHandle } from 'koffi';

let lib: LibraryHandle | undefined;

export function libc(): LibraryHandle {
  lib ??= koffi.load('libc.so.6');
  return lib;
}

/** The last libc call's errno as a Node-style error (code 'EACCES', errno 13, syscall). */
export function errnoError(call: string): NodeJS.ErrnoException {
  const n = koffi.errno();
  const code = Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
  const err: NodeJS.ErrnoException = new Error(`${call}: ${code}`);
  err.code = code;
  err.errno = n;
  err.syscall = call;
  return err;
}
