#!/bin/bash
# setup.sh - prepare this host to boot Debian's 6.1 kernel under qemu (TCG) for run-in-guest.sh
#
# Idempotent: installs packages only when missing, (re)builds the initrd only when it is missing
# or lacks the 9p modules, and makes each file in the cache directory only when it is missing.
# Prints one line on stdout: the kernel version to boot (what run-in-guest.sh uses by default).
#
# Files (CACHE = $BACKLOG_QEMU_CACHE or /var/cache/backlog-agent-qemu):
#   /boot/vmlinuz-VERSION, /boot/initrd.img-VERSION  the kernel notes' recipe (initrd with 9p)
#   CACHE/vmlinux-VERSION      the uncompressed kernel, booted through its PVH entry
#   CACHE/initrd-9p.img-VERSION  a small initrd with only the listed modules (MODULES=list):
#                              unpacks and boots faster under TCG than the distro's MODULES=most
#   CACHE/btf-VERSION          the kernel's raw BTF, for compile-check.sh -b on this host
#
# Why each step (see /work/shared/KERNEL-NOTES.md, last section):
#   - linux-image-amd64: a distro kernel with kprobes, fentry and BTF, which the host kernel lacks.
#   - initramfs-tools + 9p modules: the guest's root is the host's / shared read-only over virtio-9p,
#     and 9p/virtio_pci are modules on Debian, so the initrd must load them before mounting root.
#   - qemu-system-x86: TCG only; the host's /dev/kvm cannot run a stock kernel.
#   - vmlinux (ELF with a PVH note): qemu boots it directly, skipping bzImage decompression (~2.6 s).
#   - btf: lets compile-check.sh type-check programs against 6.1 without booting it.
set -euo pipefail

CACHE_DIR=${BACKLOG_QEMU_CACHE:-/var/cache/backlog-agent-qemu}
MODULES=(9p 9pnet 9pnet_virtio virtio_pci)

log() { echo "setup: $*" >&2; }

missing_packages() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$status" = installed ] || echo "$p"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages "$@" | tr "\n" " ")
    [ -z "${missing// /}" ] && return 0
    log "installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q --no-install-recommends $missing >&2; then
        apt-get update -q >&2
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >&2
    fi
}

# initramfs-tools first, so the modules list is in place before the kernel's postinst builds the initrd.
install_packages initramfs-tools qemu-system-x86 zstd xz-utils binutils

MODFILE=/etc/initramfs-tools/modules
for m in "${MODULES[@]}"; do
    grep -qx "$m" "$MODFILE" || { log "adding $m to $MODFILE"; echo "$m" >> "$MODFILE"; }
done

install_packages linux-image-amd64

# The versioned image package linux-image-amd64 depends on, e.g. linux-image-6.1.0-41-amd64.
image_pkg=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n1)
KVER=${image_pkg#linux-image-}
[ -f "/boot/vmlinuz-$KVER" ] || { log "no /boot/vmlinuz-$KVER"; exit 1; }

INITRD=/boot/initrd.img-$KVER
if [ ! -f "$INITRD" ]; then
    log "building $INITRD"
    update-initramfs -c -k "$KVER" >&2
elif ! lsinitramfs "$INITRD" | grep '/9pnet_virtio\.ko' >/dev/null; then  # no -q: SIGPIPE + pipefail
    log "rebuilding $INITRD with 9p modules"
    update-initramfs -u -k "$KVER" >&2
fi

# Uncompressed kernel for PVH boot: find the payload after the bzImage setup code and decompress it
# (what the kernel's scripts/extract-vmlinux does).
VMLINUX=$CACHE_DIR/vmlinux-$KVER
if [ ! -s "$VMLINUX" ]; then
    mkdir -p "$CACHE_DIR"
    log "extracting $VMLINUX"
    python3 "$(dirname "$0")/extract-vmlinux.py" "/boot/vmlinuz-$KVER" "$VMLINUX.tmp"
    mv "$VMLINUX.tmp" "$VMLINUX"
fi

BTF=$CACHE_DIR/btf-$KVER
if [ ! -s "$BTF" ]; then
    log "extracting $BTF"
    objcopy -O binary --only-section=.BTF "$VMLINUX" "$BTF.tmp"
    mv "$BTF.tmp" "$BTF"
fi

SMALL_INITRD=$CACHE_DIR/initrd-9p.img-$KVER
if [ ! -s "$SMALL_INITRD" ]; then
    log "building $SMALL_INITRD"
    conf=$(mktemp -d)
    cp -a /etc/initramfs-tools/. "$conf/"
    sed -i 's/^MODULES=.*/MODULES=list/' "$conf/initramfs.conf"
    mkinitramfs -d "$conf" -o "$SMALL_INITRD.tmp" "$KVER" >&2
    rm -rf "$conf"
    mv "$SMALL_INITRD.tmp" "$SMALL_INITRD"
fi

echo "$KVER"
