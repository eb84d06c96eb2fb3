import { createPrivateKey, createSign, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import forge from 'node-forge';
import { issueSigningCert, type CA } from './ca.ts';
import { writePrivateFile } from './files.ts';

export const SIGNING_CERT_FILE = 'signing.crt';
export const SIGNING_KEY_FILE = 'signing.key';
// Renew well before expiry: iPXE checks validity against its own (often wrong) clock.
const RENEW_BEFORE = 60 * 86_400_000;

/** Makes detached CMS signatures of boot artefacts in the form iPXE `imgverify` accepts. */
export interface Signer {
  /** The signing certificate (codeSigning EKU). */
  certPem: string;
  /** Signing certificate then the CA: exactly the certificates embedded in every signature. */
  chainPem: string;
  /** DER CMS SignedData over `data`. */
  signBuffer(data: Buffer | string): Buffer;
  /** DER CMS SignedData over a file, hashed as a stream (a 100 MB initramfs never sits in memory). */
  signFile(path: string): Promise<Buffer>;
}

/**
 * The signer for this CA: `<pki>/signing.{crt,key}` (0600), issued on first use and re-issued when it nears
 * expiry or was issued by another CA (after `heph pki rotate`).
 */
export async function loadOrCreateSigner(ca: CA): Promise<Signer> {
  const certFile = join(ca.dir, SIGNING_CERT_FILE);
  const keyFile = join(ca.dir, SIGNING_KEY_FILE);
  if (existsSync(certFile) && existsSync(keyFile)) {
    const certPem = readFileSync(certFile, 'utf8');
    const keyPem = readFileSync(keyFile, 'utf8');
    if (stillGood(certPem, keyPem, ca)) return createSigner(certPem, keyPem, [ca.certPem]);
  }
  const issued = await issueSigningCert(ca);
  writePrivateFile(keyFile, issued.keyPem);
  writePrivateFile(certFile, issued.certPem);
  return createSigner(issued.certPem, issued.keyPem, [ca.certPem]);
}

function stillGood(certPem: string, keyPem: string, ca: CA): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const caCert = new X509Certificate(ca.certPem);
    return cert.checkIssued(caCert) && cert.verify(caCert.publicKey) && cert.checkPrivateKey(createPrivateKey(keyPem)) && Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE;
  } catch {
    return false;
  }
}

/**
 * A signer from a certificate, its key and the rest of its chain up to and including the root. iPXE needs the
 * root inside the signature: it trusts roots by fingerprint only and, on a fresh boot, rejects a CMS without it.
 */
export function createSigner(certPem: string, keyPem: string, chain: string[]): Signer {
  const key: KeyObject = createPrivateKey(keyPem);
  const cert = forge.pki.certificateFromPem(certPem);
  const certs = [certPem, ...chain].map((pem) => forge.asn1.fromDer(forge.pem.decode(pem)[0]!.body));
  const sid = { issuer: cert.issuer.attributes, serialNumber: cert.serialNumber };
  return {
    certPem,
    chainPem: [certPem, ...chain].join(''),
    // Without signed attributes the RSA signature is over the content's own digest, so node:crypto can hash and
    // sign natively (10x faster than forge, and streamable); forge only assembles the ASN.1 around it.
    signBuffer: (data) => signedData(certs, sid, sign('sha256', typeof data === 'string' ? Buffer.from(data) : data, key)),
    async signFile(path) {
      const s = createSign('sha256');
      await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), s);
      return signedData(certs, sid, s.sign(key));
    },
  };
}

const { asn1 } = forge;
const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const set = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
const oid = (id: string): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const int = (n: number): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
const nul = (): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '');
const explicit0 = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, items);

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
};

/**
 * ContentInfo{signedData} with no encapsulated content (detached), every certificate, and one SignerInfo with
 * no signed attributes (iPXE skips signedAttrs and checks the signature against the raw image digest). The same
 * shape forge's pkcs7.sign produces, which a real iPXE accepted (docs dependencies.md).
 */
function signedData(certs: forge.asn1.Asn1[], sid: { issuer: forge.pki.CertificateField[]; serialNumber: string }, signature: Buffer): Buffer {
  const sha256 = seq([oid(OID.sha256), nul()]);
  const signerInfo = seq([
    int(1),
    seq([forge.pki.distinguishedNameToAsn1({ attributes: sid.issuer } as forge.pki.Certificate['issuer']), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(sid.serialNumber))]),
    sha256,
    seq([oid(OID.rsaEncryption), nul()]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, signature.toString('binary')),
  ]);
  const content = seq([
    oid(OID.signedData),
    explicit0([seq([int(1), set([seq([oid(OID.sha256), nul()])]), seq([oid(OID.data)]), asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, certs), set([signerInfo])])]),
  ]);
  return Buffer.from(asn1.toDer(content).getBytes(), 'binary');
}
