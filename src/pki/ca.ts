import { generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { StartupError } from '../errors.ts';
import { ensurePrivateDir, writePrivateFile } from './files.ts';

// RSA only: iPXE verifies RSA signatures (ECDSA only in builds after 2025-12), and forge parses RSA only.
const CA_BITS = 3072;
const LEAF_BITS = 2048;
const DAY = 86_400_000;
// Machines with a wrong RTC reject certificates "not yet valid"; backdating costs nothing (security.md R8).
const BACKDATE = DAY;

export const PKI_DIR = 'pki';
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

/** heph's certificate authority: the root every certificate and signature heph makes chains to. */
export interface CA {
  /** Directory holding the CA files (0700). */
  dir: string;
  certPem: string;
  keyPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  /** SHA-256 fingerprint, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
}

/** A certificate heph issued, as PEM text ready for node:tls, grpc-js, curl or openssl. */
export interface IssuedCert {
  certPem: string;
  keyPem: string;
  /** The CA certificate: what peers put in their trust store. */
  caPem: string;
  /** certPem followed by caPem. */
  chainPem: string;
  notAfter: Date;
}

export function pkiDir(dataDir: string): string {
  return join(dataDir, PKI_DIR);
}

/**
 * Reads heph's CA from `<dataDir>/pki`, or creates it there on first start (key and certificate 0600 in a 0700
 * directory). A half-present, mismatched or expired CA stops startup with a fix, never silently replaced:
 * every machine and client that trusts the old root would stop booting.
 */
export async function loadOrCreateCA(dataDir: string, opts: { commonName?: string } = {}): Promise<CA> {
  ensurePrivateDir(dataDir);
  const dir = ensurePrivateDir(pkiDir(dataDir));
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (haveCert !== haveKey) {
    throw new StartupError(
      `CA in ${dir}: ${haveCert ? CA_KEY_FILE : CA_CERT_FILE} is missing but ${haveCert ? CA_CERT_FILE : CA_KEY_FILE} is present.`,
      `Restore the missing file from a backup, or start a new CA with \`heph pki rotate\` (machines and clients must then trust the new CA).`,
    );
  }
  if (!haveCert) {
    const ca = await createCA(dir, opts.commonName ?? `heph CA ${hostname()}`);
    writePrivateFile(keyFile, ca.keyPem);
    writePrivateFile(certFile, ca.certPem);
    return ca;
  }
  return readCA(dir);
}

/** Parses and checks the CA files in `dir`. */
export function readCA(dir: string): CA {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const certPem = readFileSync(certFile, 'utf8');
  const keyPem = readFileSync(keyFile, 'utf8');
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  try {
    cert = forge.pki.certificateFromPem(certPem);
    key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    throw new StartupError(`CA in ${dir}: cannot be read: ${(err as Error).message}`, 'Restore ca.crt and ca.key from a backup, or start a new CA with `heph pki rotate`.', { cause: err });
  }
  const pub = cert.publicKey as forge.pki.rsa.PublicKey;
  if (pub.n.compareTo(key.n) !== 0) {
    throw new StartupError(`CA in ${dir}: ca.key does not belong to ca.crt.`, 'Restore the matching pair from a backup, or start a new CA with `heph pki rotate`.');
  }
  if (cert.validity.notAfter.getTime() < Date.now()) {
    throw new StartupError(`CA in ${dir}: the CA certificate expired on ${cert.validity.notAfter.toISOString()}.`, 'Start a new CA with `heph pki rotate`, then give machines and clients the new ca.crt.');
  }
  return { dir, certPem, keyPem, cert, key, fingerprint: new X509Certificate(certPem).fingerprint256 };
}

async function createCA(dir: string, commonName: string): Promise<CA> {
  const { publicKey, privateKey, keyPem } = await newKeyPair(CA_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - BACKDATE);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * DAY);
  const name = [
    { shortName: 'CN', value: commonName },
    { shortName: 'O', value: 'Hephaestus' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  const certPem = toPem(cert);
  return { dir, certPem, keyPem, cert, key: privateKey, fingerprint: new X509Certificate(certPem).fingerprint256 };
}

export interface ServerCertRequest {
  commonName: string;
  ipAddresses?: string[];
  dnsNames?: string[];
  /** Default 397 days (the longest lifetime browsers accept). */
  days?: number;
}

/** A TLS server certificate (serverAuth) with the given IP and DNS subject alternative names. */
export async function issueServerCert(ca: CA, req: ServerCertRequest): Promise<IssuedCert> {
  const altNames = [...(req.dnsNames ?? []).map((value) => ({ type: 2, value })), ...(req.ipAddresses ?? []).map((ip) => ({ type: 7, ip }))];
  if (altNames.length === 0) throw new Error('a server certificate needs at least one IP address or DNS name');
  return issue(ca, {
    subject: [{ shortName: 'CN', value: req.commonName }],
    days: req.days ?? 397,
    extensions: [
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
}

export interface ClientCertRequest {
  commonName: string;
  /** Subject O, e.g. a role (Talos puts roles there: `os:admin`). */
  organization?: string;
  days?: number;
}

/** A TLS client certificate (clientAuth), e.g. for the admin gRPC API. */
export async function issueClientCert(ca: CA, req: ClientCertRequest): Promise<IssuedCert> {
  return issue(ca, {
    subject: [{ shortName: 'CN', value: req.commonName }, ...(req.organization === undefined ? [] : [{ shortName: 'O', value: req.organization }])],
    days: req.days ?? 365,
    extensions: [
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });
}

/**
 * The certificate boot artefacts are signed with. iPXE refuses a signer without digitalSignature
 * (EACCES_NON_SIGNING) or without the codeSigning EKU (EACCES_NON_CODE_SIGNING); no AIA, so iPXE never tries OCSP.
 */
export async function issueSigningCert(ca: CA, req: { commonName?: string; days?: number } = {}): Promise<IssuedCert> {
  return issue(ca, {
    subject: [{ shortName: 'CN', value: req.commonName ?? 'heph boot signing' }, { shortName: 'O', value: 'Hephaestus' }],
    days: req.days ?? 2 * 365,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', codeSigning: true },
    ],
  });
}

async function issue(ca: CA, spec: { subject: forge.pki.CertificateField[]; days: number; extensions: object[] }): Promise<IssuedCert> {
  const { publicKey, keyPem } = await newKeyPair(LEAF_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - BACKDATE);
  // Never outlive the CA: a chain with a leaf valid after its root is refused by strict verifiers.
  cert.validity.notAfter = new Date(Math.min(Date.now() + spec.days * DAY, ca.cert.validity.notAfter.getTime()));
  cert.setSubject(spec.subject);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([...spec.extensions, { name: 'subjectKeyIdentifier' }, { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() }]);
  cert.sign(ca.key, forge.md.sha256.create());
  const certPem = toPem(cert);
  return { certPem, keyPem, caPem: ca.certPem, chainPem: certPem + ca.certPem, notAfter: cert.validity.notAfter };
}

// Node's native key generation (async, off the event loop); forge's pure-JS one takes seconds.
const generateRsa = promisify(generateKeyPair);

async function newKeyPair(bits: number): Promise<{ publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; keyPem: string }> {
  const { privateKey } = await generateRsa('rsa', { modulusLength: bits, publicExponent: 0x10001, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { publicKey: forge.pki.setRsaPublicKey(key.n, key.e), privateKey: key, keyPem: privateKey };
}

/** A positive 127-bit serial (RFC 5280: at most 20 octets, non-negative). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString('hex');
}

function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}
