// iPXE scripts, rendered from validated values only. Every interpolated value goes through `safe()`, which refuses
// anything iPXE would give meaning to (newlines, spaces where one word is expected, `${`, `||`, `#`, quotes), so a
// bug upstream becomes a 500, never a script that does something else.

/** Characters allowed in one script word (URL, kernel argument, name). No `$` (iPXE expansion), no whitespace. */
const WORD = /^[A-Za-z0-9._,:=/+@%?&~-]+$/;
/** Characters allowed in an `echo` message. */
const TEXT = /^[A-Za-z0-9 ._,:=/+@()-]*$/;

export class UnsafeScriptValue extends Error {}

function safe(value: string, what: string, pattern = WORD): string {
  if (!pattern.test(value) || value.includes('||') || value.includes('&&')) throw new UnsafeScriptValue(`${what} has characters an iPXE script must not carry`);
  return value;
}

/** Free text made fit for an `echo` line: anything outside the message charset becomes a space. */
export function toScriptText(s: string): string {
  return s.replace(/[^A-Za-z0-9 ._,:=/+@()-]/g, ' ');
}

/** Is this kernel argument safe to put in a script? (Profiles are validated with it when loaded.) */
export function isSafeKernelArg(arg: string): boolean {
  return WORD.test(arg) && !arg.includes('||') && !arg.includes('&&') && !arg.includes('?') && !arg.includes('&');
}

function script(lines: string[]): string {
  return `#!ipxe\n${lines.join('\n')}\n`;
}

/**
 * The static entry script. It reports the booting NIC (`netX` is the most recently opened net device, the one
 * iPXE just got DHCP on; plain `${mac}` is whichever settings block iPXE finds first), SMBIOS identity and the
 * firmware kind, URL-escaped, and replaces itself with the answer to /ipxe. On a failed fetch it waits and
 * asks again instead of dropping to the next boot device: heph may be restarting.
 */
export function renderChainScript(base: string, retrySeconds: number): string {
  const url =
    `${safe(base, 'base URL')}/ipxe?mac=\${netX/mac:hexhyp}&uuid=\${uuid}&serial=\${serial:uristring}` +
    `&hostname=\${hostname:uristring}&arch=\${buildarch:uristring}&platform=\${platform:uristring}` +
    `&manufacturer=\${manufacturer:uristring}&product=\${product:uristring}`;
  return script([
    ':start',
    `chain --replace --autofree ${url} || goto retry`,
    ':retry',
    `echo heph: no boot instructions yet, asking again in ${Math.trunc(retrySeconds)} s`,
    `sleep ${Math.trunc(retrySeconds)}`,
    'goto start',
  ]);
}

export interface InstallScript {
  base: string;
  machineId: string;
  profile: string;
  kernelUrl: string;
  initrdUrl: string;
  /** Profile kernel args plus any the daemon adds (event sink, kernel log). Validated again here. */
  kernelArgs: string[];
  /** Absent: Talos boots into maintenance mode (no config, no secret). */
  configUrl?: string;
  /** UEFI iPXE builds before 2023 hand the initrd to an EFI-stub kernel only when it is named on the cmdline. */
  efi: boolean;
  retries: number;
}

const INITRD_NAME = 'initramfs.xz';

/**
 * Kernel + initrd + boot. Each download is retried `retries` times with a pause; when all fail (or boot returns)
 * the script re-chains /boot.ipxe so the machine asks for a fresh decision rather than falling to another device.
 */
export function renderInstallScript(s: InstallScript): string {
  const args = s.kernelArgs.map((a, i) => safe(a, `kernel argument ${i + 1}`));
  if (s.efi) args.push(`initrd=${INITRD_NAME}`);
  if (s.configUrl !== undefined) args.push(`talos.config=${safe(s.configUrl, 'config URL')}`);
  const retries = Math.trunc(s.retries);
  const what = s.configUrl === undefined ? 'maintenance mode' : `install, profile ${safe(s.profile, 'profile name')}`;
  return script([
    `echo heph: ${safe(s.machineId, 'machine id')}: ${what}`,
    'imgfree',
    'set tries:int32 0',
    ':kernel',
    `kernel --name vmlinuz ${safe(s.kernelUrl, 'kernel URL')} ${args.join(' ')} && goto initrd ||`,
    'inc tries',
    `iseq \${tries} ${retries} && goto failed ||`,
    'sleep 5',
    'goto kernel',
    ':initrd',
    'set tries:int32 0',
    ':initrd_again',
    `initrd --name ${INITRD_NAME} ${safe(s.initrdUrl, 'initrd URL')} && goto boot ||`,
    'inc tries',
    `iseq \${tries} ${retries} && goto failed ||`,
    'sleep 5',
    'goto initrd_again',
    ':boot',
    'boot ||',
    ':failed',
    'echo heph: download or boot failed, starting over in 30 s',
    'sleep 30',
    `chain --replace --autofree ${safe(s.base, 'base URL')}/boot.ipxe`,
  ]);
}

/** For machines waiting for an operator (or a profile): say why, wait, ask again. */
export function renderHoldScript(base: string, message: string, seconds: number): string {
  return script([
    `echo heph: ${safe(message, 'hold message', TEXT)}`,
    `sleep ${Math.trunc(seconds)}`,
    `chain --replace --autofree ${safe(base, 'base URL')}/boot.ipxe`,
  ]);
}

export type LocalBootMode = 'exit' | 'exit1' | 'sanboot';

/** Boot from disk. If sanboot fails (no BIOS disk, UEFI) fall back to leaving iPXE so the firmware moves on. */
export function renderLocalScript(mode: LocalBootMode): string {
  switch (mode) {
    case 'exit':
      return script(['exit']);
    case 'exit1':
      return script(['exit 1']);
    case 'sanboot':
      return script(['sanboot --no-describe --drive 0x80 || exit']);
  }
}
