#!/bin/sh
# Builds the e2e payload that stands in for Talos: a Debian cloud kernel and a busybox initramfs (see ./init).
# Output: <repo>/.cache/e2e/payload/{vmlinuz,initramfs.gz,stamp} (gitignored). Rebuilt only when an input changes:
# this script, init, udhcpc.script, the .proto files, the event texts, the kernel package, busybox or curl.
# Needs (Debian): busybox-static cpio curl protobuf-compiler, apt-get access for linux-image-cloud-amd64.
# Prints the output directory on stdout; everything else goes to stderr.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${E2E_CACHE:-$REPO/.cache/e2e}
OUT=$CACHE/payload
DEBS=$CACHE/debs
MODULES="virtio_pci virtio_net virtio_blk"

log() { echo "payload: $*" >&2; }
need() { command -v "$1" > /dev/null 2>&1 || { log "missing $1 (Debian package $2)"; exit 3; }; }
need busybox busybox-static
need cpio cpio
need curl curl
need protoc protobuf-compiler
need dpkg-deb dpkg
BUSYBOX=$(command -v busybox)
CURL=$(command -v curl)

mkdir -p "$DEBS" "$OUT"
# Test files run in parallel: one build at a time, the others then find it up to date.
exec 9> "$CACHE/.lock"
flock 9

# The kernel: the cloud flavour's metapackage names the versioned image package it depends on.
kernel_deb() { ls "$DEBS"/linux-image-[0-9]*-cloud-amd64_*.deb 2> /dev/null | sort -V | tail -n 1; }
if [ -z "$(kernel_deb)" ]; then
  log "downloading linux-image-cloud-amd64"
  (cd "$DEBS" && apt-get download -q linux-image-cloud-amd64 >&2)
  meta=$(ls "$DEBS"/linux-image-cloud-amd64_*.deb | sort -V | tail -n 1)
  dep=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
  [ -n "$dep" ] || { log "cannot read the kernel package from $meta"; exit 3; }
  (cd "$DEBS" && apt-get download -q "$dep" >&2)
fi
KDEB=$(kernel_deb)

STAMP=$(
  {
    cat "$HERE/build.sh" "$HERE/init" "$HERE/udhcpc.script" "$HERE"/*.proto "$HERE"/events/*.txtpb
    basename "$KDEB"
    sha256sum "$BUSYBOX" "$CURL" | cut -d' ' -f1
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.gz" ]; then
  log "up to date ($OUT)"
  echo "$OUT"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/heph-payload.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building from $(basename "$KDEB")"
dpkg-deb -x "$KDEB" "$WORK/deb"
KVER=$(ls "$WORK/deb/lib/modules" | head -n 1)
KMODS="$WORK/deb/lib/modules/$KVER/kernel"
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/modules" "$ROOT/events" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp"

# Modules with their dependencies, read from each module's .modinfo "depends=" (the order differs between kernel
# builds, so it is never hard-coded), loaded dependencies first.
modpath() { find "$KMODS" -name "$(echo "$1" | sed 's/[-_]/[-_]/g').ko*" | head -n 1; }
ORDER=$WORK/order
: > "$ORDER"
add_module() {
  local f d
  grep -qx "$1" "$ORDER" && return 0
  f=$(modpath "$1")
  [ -n "$f" ] || { log "module $1 not found in $KVER"; exit 3; }
  case "$f" in *.ko) ;; *) log "compressed module $f is not supported"; exit 3 ;; esac
  for d in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$d"; done
  grep -qx "$1" "$ORDER" || { echo "$1" >> "$ORDER"; cp "$f" "$ROOT/modules/$1.ko"; }
}
for m in $MODULES; do add_module "$m"; done
cp "$ORDER" "$ROOT/modules/order"
log "modules: $(tr '\n' ' ' < "$ORDER")"

# busybox with every applet, curl (for HTTP/2 gRPC) with the shared libraries it links.
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"; done
cp "$CURL" "$ROOT/bin/curl"
for lib in $(ldd "$CURL" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'); do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
[ -e "$ROOT/lib64" ] || [ ! -d "$ROOT/usr/lib64" ] || ln -s usr/lib64 "$ROOT/lib64"
cp "$HERE/init" "$ROOT/init"
cp "$HERE/udhcpc.script" "$ROOT/bin/udhcpc.script"
chmod 755 "$ROOT/init" "$ROOT/bin/udhcpc.script"
mknod -m 600 "$ROOT/dev/console" c 5 1 2> /dev/null || log "no /dev/console node (not root): the kernel will warn"

# Event bodies: gRPC length-prefixed EventRequest messages without their id (field 2), which /init appends at run
# time as 0x12 0x14 + 20 characters; the 5-byte gRPC prefix already counts those 22 bytes.
for t in "$HERE"/events/*.txtpb; do
  name=$(basename "$t" .txtpb)
  protoc -I"$HERE" -I/usr/include --encode=events.EventRequest "$HERE/talos-events.proto" "$HERE/talos-machine.proto" < "$t" > "$WORK/$name.pb"
  len=$(($(wc -c < "$WORK/$name.pb") + 22))
  {
    printf '\000'
    printf "\\$(printf %03o $((len >> 24 & 255)))\\$(printf %03o $((len >> 16 & 255)))\\$(printf %03o $((len >> 8 & 255)))\\$(printf %03o $((len & 255)))"
    cat "$WORK/$name.pb"
  } > "$ROOT/events/$name.bin"
done

cp "$WORK/deb/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
(cd "$ROOT" && find . | cpio -o -H newc --quiet) | gzip -6 > "$WORK/initramfs.gz"
mv "$WORK/vmlinuz" "$OUT/vmlinuz"
mv "$WORK/initramfs.gz" "$OUT/initramfs.gz"
echo "$KVER" > "$OUT/kernel-version"
echo "$STAMP" > "$OUT/stamp"
log "built $OUT (kernel $KVER, initramfs $(wc -c < "$OUT/initramfs.gz") bytes)"
echo "$OUT"
