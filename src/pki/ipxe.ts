// Script lines that make iPXE check heph's signatures. Pure: the script renderers call these when signing is on.

/** The URL of a resource's signature: `.sig` appended to the path, before any query (`/ipxe.sig?mac=…`). */
export function signatureUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? `${url}.sig` : `${url.slice(0, q)}.sig${url.slice(q)}`;
}

/**
 * `imgverify` for an image already fetched under `name`. iPXE checks trust only when an image is executed, and
 * never for initrds, so every kernel and initrd gets one of these explicitly.
 */
export function imgverify(name: string, url: string): string {
  return `imgverify ${name} ${signatureUrl(url)}`;
}

/**
 * Fetch a script, verify it, then run it in place of the current one (`chain` finds an image by name first).
 * The script and its signature are fetched by the same machine from the same URL: heph keeps the signature of
 * exactly the bytes it sent, one-time token included.
 */
export function verifiedChain(url: string, name = 'heph-next'): string {
  return `imgfetch --name ${name} ${url} && ${imgverify(name, url)} && chain --replace --autofree ${name}`;
}
