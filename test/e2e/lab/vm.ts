import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild, type Lab, type MachineIdentity } from './lab.ts';

/**
 * QEMU machines for the lab, under TCG (KVM hangs these guests: netboot-lab.md). One firmware setup per boot path:
 *   uefi-pxe   OVMF with EDK2's own virtio-net PXE (P1: proxy-DHCP → 4011 → TFTP ipxe.efi → iPXE)
 *   bios-ipxe  SeaBIOS running the iPXE option ROM (P2: iPXE DHCP → script URL)
 *   uefi-http  OVMF UEFI HTTP Boot, PXE switched off (P3: HTTP ipxe.efi → iPXE)
 *   direct     QEMU loads kernel + initrd itself (payload test without any netboot)
 */
export type BootPath = 'uefi-pxe' | 'bios-ipxe' | 'uefi-http' | 'direct';

const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const IPXE_ROM = '/usr/lib/ipxe/qemu/pxe-virtio.rom';

export interface VmOptions {
  name: string;
  machine: MachineIdentity;
  path: BootPath;
  /** For `direct`: what QEMU loads itself. */
  kernel?: { kernel: string; initrd: string; append: string };
  memoryMb?: number;
  /** QEMU exits when the guest reboots instead of resetting it. */
  noReboot?: boolean;
  diskMb?: number;
}

export interface Vm {
  name: string;
  machine: MachineIdentity;
  proc: ChildProcess;
  serialFile: string;
  diskFile: string;
  serial(): string;
  /** Resolves with the first serial line matching, rejects on timeout or when QEMU exits first. */
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

export function qemuArgs(o: VmOptions, files: { serial: string; disk: string; vars: string }): string[] {
  const m = o.machine;
  const nic = ['virtio-net-pci', 'netdev=n0', `mac=${m.mac}`, 'bootindex=1'];
  const args = [
    '-accel', 'tcg',
    '-nodefaults',
    '-display', 'none',
    '-m', String(o.memoryMb ?? 768),
    '-uuid', m.uuid,
    '-serial', `file:${files.serial}`,
    '-netdev', `tap,id=n0,ifname=${m.tap},script=no,downscript=no`,
    '-drive', `file=${files.disk},if=none,id=d0,format=raw`,
    '-device', 'virtio-blk-pci,drive=d0',
  ];
  if (o.noReboot) args.push('-no-reboot');
  const ovmf = ['-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${files.vars}`];
  switch (o.path) {
    case 'uefi-pxe':
      args.push(...ovmf, '-device', [...nic, 'romfile='].join(','));
      break;
    case 'uefi-http':
      args.push(...ovmf, '-device', [...nic, 'romfile='].join(','));
      args.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no');
      break;
    case 'bios-ipxe':
      // A transitional virtio-net makes SeaBIOS skip an explicit romfile silently; modern-only fixes it.
      args.push('-machine', 'graphics=off', '-device', [...nic, `romfile=${IPXE_ROM}`, 'disable-legacy=on'].join(','));
      break;
    case 'direct': {
      if (!o.kernel) throw new Error('a direct boot needs kernel, initrd and append');
      args.push('-device', [...nic, 'romfile='].join(','), '-kernel', o.kernel.kernel, '-initrd', o.kernel.initrd, '-append', o.kernel.append);
      break;
    }
  }
  return args;
}

/** Starts a VM on its own tap in the lab's lan namespace, with a fresh zeroed disk and (for UEFI) its own NVRAM. */
export function startVm(lab: Lab, o: VmOptions): Vm {
  const serialFile = join(lab.dir, `${o.name}.serial`);
  const diskFile = join(lab.dir, `${o.name}.disk`);
  const vars = join(lab.dir, `${o.name}.vars.fd`);
  if (!existsSync(diskFile)) {
    writeFileSync(diskFile, '');
    truncateSync(diskFile, (o.diskMb ?? 8) * 1024 * 1024);
  }
  if (o.path.startsWith('uefi-') && !existsSync(vars)) copyFileSync(OVMF_VARS, vars);
  writeFileSync(serialFile, '');
  lab.addTap(o.machine.tap);
  const proc = lab.spawnIn(lab.lan, 'qemu-system-x86_64', qemuArgs(o, { serial: serialFile, disk: diskFile, vars }), `${o.name}.qemu.log`);
  const serial = (): string => {
    try {
      return readFileSync(serialFile, 'latin1');
    } catch {
      return '';
    }
  };
  return {
    name: o.name,
    machine: o.machine,
    proc,
    serialFile,
    diskFile,
    serial,
    waitForSerial: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = (): void => {
          const hit = serial().match(pattern);
          if (hit) return resolve(hit);
          if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`${o.name}: QEMU exited (${proc.exitCode ?? proc.signalCode}) before ${pattern}; serial tail:\n${tail(serial())}`));
          if (Date.now() - started > timeoutMs) return reject(new Error(`${o.name}: no ${pattern} within ${timeoutMs} ms; serial tail:\n${tail(serial())}`));
          setTimeout(tick, 250);
        };
        tick();
      }),
    async stop() {
      await stopChild(proc);
      lab.removeTap(o.machine.tap);
    },
  };
}

function tail(s: string, lines = 25): string {
  // Strip terminal escapes the firmware prints, so the tail is readable in a test report.
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/).slice(-lines).join('\n');
}
