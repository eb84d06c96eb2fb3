import { stringify } from 'yaml';

/** The ports the event sink and the kernel-log receiver are actually bound to (settings may say 0). */
export interface FeedbackPorts {
  grpc: number;
  kmsg: number;
}

function endpoints(p: FeedbackPorts, advertise: string): { sink: string; kmsg: string } {
  // A gRPC target (host:port, not a URL) and a json-lines URL with its trailing slash: protocols.md §1.1.
  return { sink: `${advertise}:${p.grpc}`, kmsg: `tcp://${advertise}:${p.kmsg}/` };
}

/** Kernel arguments for the iPXE script, so Talos reports back from its first boot on. */
export function feedbackKernelArgs(p: FeedbackPorts, advertise: string): string[] {
  const e = endpoints(p, advertise);
  return [`talos.events.sink=${e.sink}`, `talos.logging.kernel=${e.kmsg}`];
}

/**
 * Machine-config documents with the same endpoints. Kernel arguments do not survive a UEFI/UKI install
 * (protocols.md §1.4), these do: they are kept in STATE with the rest of the config. One YAML document per
 * string, without the `---` separator.
 */
export function feedbackDocuments(p: FeedbackPorts, advertise: string): string[] {
  const key = `${advertise} ${p.grpc} ${p.kmsg}`;
  // Asked for every config served, and the same until heph restarts: writing the YAML each time cost a storm's main
  // thread ~0.5 ms per machine.
  if (written?.key !== key) {
    const e = endpoints(p, advertise);
    written = {
      key,
      docs: [
        stringify({ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: e.sink }),
        stringify({ apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'heph', url: e.kmsg }),
      ],
    };
  }
  return written.docs;
}

let written: { key: string; docs: string[] } | undefined;
