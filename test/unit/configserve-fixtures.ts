// Hand-written configs in the shape of `talosctl gen config` output for Talos v1.12+ (a v1alpha1 document plus a
// HostnameConfig document). Every "secret" below is a placeholder: base64 of a PEM block whose body says it is fake.
const pem = (label: string): string =>
  Buffer.from(`-----BEGIN ${label}-----\nTk9UIEEgUkVBTCBLRVk=\n-----END ${label}-----\n`).toString('base64');

export const CRT = pem('CERTIFICATE');
export const OS_KEY = pem('ED25519 PRIVATE KEY');
export const EC_KEY = pem('EC PRIVATE KEY');
export const RSA_KEY = pem('RSA PRIVATE KEY');
const ID = Buffer.alloc(32, 1).toString('base64');
const SECRET = Buffer.alloc(32, 2).toString('base64');

export const CONTROLPLANE = `version: v1alpha1 # Indicates the schema used to decode the contents.
debug: false # Enable verbose logging to the console.
persist: true
# Provides machine specific configuration options.
machine:
    type: controlplane # Defines the role of the machine within the cluster.
    token: abcdef.0123456789abcdef
    # The root certificate authority of the PKI.
    ca:
        crt: ${CRT}
        key: ${OS_KEY}
    certSANs: []
    kubelet:
        image: ghcr.io/siderolabs/kubelet:v1.35.0
        defaultRuntimeSeccompProfileEnabled: true
        disableManifestsDirectory: true
    network: {}
    install:
        disk: /dev/sda # The disk used for installations.
        image: ghcr.io/siderolabs/installer:v1.12.0
        wipe: false
        grubUseUKICmdline: true
    features:
        rbac: true
        stableHostname: true
        apidCheckExtKeyUsage: true
        diskQuotaSupport: true
        kubePrism:
            enabled: true
            port: 7445
        hostDNS:
            enabled: true
            forwardKubeDNSToHost: true
    nodeLabels:
        node.kubernetes.io/exclude-from-external-load-balancers: ""
cluster:
    id: ${ID}
    secret: ${SECRET}
    controlPlane:
        endpoint: https://192.0.2.10:6443 # Endpoint is the canonical controlplane endpoint.
    clusterName: lab
    network:
        dnsDomain: cluster.local
        podSubnets:
            - 10.244.0.0/16
        serviceSubnets:
            - 10.96.0.0/12
    token: abcdef.0123456789abcdef
    secretboxEncryptionSecret: ${SECRET}
    ca:
        crt: ${CRT}
        key: ${EC_KEY}
    aggregatorCA:
        crt: ${CRT}
        key: ${EC_KEY}
    serviceAccount:
        key: ${RSA_KEY}
    apiServer:
        image: registry.k8s.io/kube-apiserver:v1.35.0
        certSANs:
            - 192.0.2.10
        disablePodSecurityPolicy: true
        admissionControl:
            - name: PodSecurity
              configuration:
                apiVersion: pod-security.admission.config.k8s.io/v1alpha1
                defaults:
                    audit: restricted
                    enforce: baseline
                exemptions:
                    namespaces:
                        - kube-system
                kind: PodSecurityConfiguration
        auditPolicy:
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
                - level: Metadata
    controllerManager:
        image: registry.k8s.io/kube-controller-manager:v1.35.0
    proxy:
        image: registry.k8s.io/kube-proxy:v1.35.0
    scheduler:
        image: registry.k8s.io/kube-scheduler:v1.35.0
    discovery:
        enabled: true
        registries:
            kubernetes:
                disabled: true
            service: {}
    etcd:
        ca:
            crt: ${CRT}
            key: ${EC_KEY}
    extraManifests: []
    inlineManifests: []
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: stable
`;

export const WORKER = `version: v1alpha1
debug: false
persist: true
machine:
    type: worker
    token: abcdef.0123456789abcdef
    ca:
        crt: ${CRT}
        key: ""
    certSANs: []
    kubelet:
        image: ghcr.io/siderolabs/kubelet:v1.35.0
    network: {}
    install:
        disk: /dev/sda
        image: ghcr.io/siderolabs/installer:v1.12.0
        wipe: false
        grubUseUKICmdline: true
    features:
        rbac: true
        kubePrism:
            enabled: true
            port: 7445
cluster:
    id: ${ID}
    secret: ${SECRET}
    controlPlane:
        endpoint: https://192.0.2.10:6443
    clusterName: lab
    network:
        dnsDomain: cluster.local
        podSubnets:
            - 10.244.0.0/16
        serviceSubnets:
            - 10.96.0.0/12
    token: abcdef.0123456789abcdef
    ca:
        crt: ${CRT}
        key: ""
    discovery:
        enabled: true
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: stable
`;

/** A single-document config (Talos before 1.12 had no HostnameConfig): where JSON patches still apply. */
export const WORKER_SINGLE = WORKER.slice(0, WORKER.indexOf('---\n'));

/** Talos 1.14 shape: no machine.install; the install disk is a CEL selector in an UnattendedInstallConfig. */
export const WORKER_114 = `${WORKER.replace(
  '    install:\n        disk: /dev/sda\n        image: ghcr.io/siderolabs/installer:v1.12.0\n        wipe: false\n        grubUseUKICmdline: true\n',
  '',
)}---
apiVersion: v1alpha1
kind: UnattendedInstallConfig
installer:
    image: ghcr.io/siderolabs/installer:v1.14.0
provisioning:
    diskSelector:
        match: disk.dev_path == "/dev/sda"
    wipe: false
`;
