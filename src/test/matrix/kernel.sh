#!/bin/bash
# kernel.sh - make (once) and describe a Debian kernel to boot under qemu: 5.10 (Debian 11), 6.1 (Debian 12),
# 6.12 (Debian 13)
#
# Usage: kernel.sh 5.10|6.1|6.12
# Prints shell assignments on stdout, for run-in-guest.sh (and people) to read:
#   KVER=5.10.0-35-amd64  KERNEL=<vmlinux, PVH boot>  INITRD=<initrd with virtio and 9p>
#   MODULES=<directory holding lib/modules/KVER, to share into the guest>  BTF=<the kernel's raw .BTF>
#
# 6.1 is this machine's own suite: src/test/qemu/setup.sh installs it (linux-image-amd64) and its initrd.
# 5.10 and 6.12 come from the suites bullseye and trixie without touching this machine's apt: apt runs with a
# private list directory and downloads the image package, `dpkg -x` unpacks it, `depmod -b` indexes its
# modules, and a small initrd holds a static busybox (bookworm's busybox-static, downloaded and unpacked, not
# installed) and the modules that mounting the 9p root needs. The guest gets that kernel's whole module tree
# over 9p at /lib/modules (run-in-guest.sh -k): NETLINK_SOCK_DIAG needs inet_diag and tcp_diag, which the
# kernel loads on first use, and the host's /lib/modules has only 6.1's.
# Cache: $BACKLOG_QEMU_CACHE (default /var/cache/backlog-agent-qemu)/debian-SUITE/. Idempotent: each file is
# made only when missing; a stamp marks a finished tree. The mirror is the one this machine's apt uses
# (/etc/apt/sources.list.d/debian.sources).
set -euo pipefail

cache=${BACKLOG_QEMU_CACHE:-/var/cache/backlog-agent-qemu}
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "kernel.sh: $*" >&2; }

case ${1:-} in
    6.1)
        kver=$(bash "$here/../qemu/setup.sh" | tail -n1)
        echo "KVER=$kver"
        echo "KERNEL=$cache/vmlinux-$kver"
        echo "INITRD=$cache/initrd-9p.img-$kver"
        echo "MODULES="
        echo "BTF=$cache/btf-$kver"
        exit 0 ;;
    5.10) suite=bullseye ;;
    6.12) suite=trixie ;;
    *) echo "usage: kernel.sh 5.10|6.1|6.12" >&2; exit 2 ;;
esac

dir=$cache/debian-$suite
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

if [ ! -s "$dir/kernel.env" ]; then
    [ "$(id -u)" = 0 ] || { log "must run as root to make $dir"; exit 1; }
    for tool in qemu-system-x86_64:qemu-system-x86 objcopy:binutils cpio:cpio xz:xz-utils zstd:zstd depmod:kmod; do
        command -v "${tool%%:*}" >/dev/null || missing="${missing:-} ${tool#*:}"
    done
    if [ -n "${missing:-}" ]; then
        log "installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; }
    fi
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || { log "no mirror in /etc/apt/sources.list.d/debian.sources"; exit 1; }
    apt=$dir/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" > "$apt/sources.list"
    A=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
       -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null)
    start=$(date +%s)
    log "reading $suite's package lists"
    apt-get -q "${A[@]}" update >&2
    image=$(apt-cache "${A[@]}" depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
    [ -n "$image" ] || { log "no versioned image package behind $suite's linux-image-amd64"; exit 1; }
    kver=${image#linux-image-}
    kver=${kver%-unsigned}
    debs=$dir/debs
    rm -rf "$debs" "$dir/tree" "$dir/busybox"
    mkdir -p "$debs"
    log "downloading $image"
    (cd "$debs" && apt-get -q "${A[@]}" download "$image" >&2)
    # busybox-static from this machine's own suite: a static binary runs under any kernel here.
    (cd "$debs" && apt-get -q download busybox-static >&2)
    dpkg -x "$debs"/linux-image-*.deb "$dir/tree"
    dpkg -x "$debs"/busybox-static_*.deb "$dir/busybox"
    # bullseye keeps modules in lib/modules, trixie in usr/lib/modules: one place for depmod and the guest.
    if [ -d "$dir/tree/usr/lib/modules/$kver" ] && [ ! -d "$dir/tree/lib/modules/$kver" ]; then
        mkdir -p "$dir/tree/lib/modules"
        mv "$dir/tree/usr/lib/modules/$kver" "$dir/tree/lib/modules/$kver"
    fi
    depmod -b "$dir/tree" "$kver"
    vmlinuz=$(ls "$dir"/tree/boot/vmlinuz-"$kver")

    # The uncompressed kernel for PVH boot (what the kernel's scripts/extract-vmlinux does).
    python3 "$here/../qemu/extract-vmlinux.py" "$vmlinuz" "$dir/vmlinux-$kver"
    objcopy -O binary --only-section=.BTF "$dir/vmlinux-$kver" "$dir/btf-$kver"

    # The initrd: busybox, the 9p root's modules with what they depend on (modules.dep), an /init that
    # loads them in order, mounts the root and switch_roots to the init= the guest was given.
    rd=$dir/initrd.work
    rm -rf "$rd"
    mkdir -p "$rd"/bin "$rd"/proc "$rd"/sys "$rd"/dev "$rd"/newroot "$rd"/modules
    cp "$dir/busybox/bin/busybox" "$rd/bin/busybox"
    moddir=$dir/tree/lib/modules/$kver
    order=()
    add_module() {  # depth first: dependencies before the module itself
        local name=$1 path deps d
        path=$(awk -F: -v n="$name" '{ f = $1; sub(".*/", "", f); sub(/\.ko(\.[a-z]+)?$/, "", f); gsub("-", "_", f); if (f == n) { print $1; exit } }' "$moddir/modules.dep")
        [ -n "$path" ] || return 0   # built in
        for d in "${order[@]+"${order[@]}"}"; do [ "$d" = "$path" ] && return 0; done
        deps=$(awk -F: -v p="$path" '$1 == p { print $2; exit }' "$moddir/modules.dep")
        for d in $deps; do
            d=${d##*/}; d=${d%%.ko*}; add_module "${d//-/_}"
        done
        order+=("$path")
    }
    for m in virtio virtio_ring virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do add_module "$m"; done
    : > "$rd/modules/order"
    for path in "${order[@]}"; do
        base=${path##*/}
        case $base in
            *.ko.xz) xz -dc "$moddir/$path" > "$rd/modules/${base%.xz}" ;;
            *.ko.zst) zstd -dcq "$moddir/$path" > "$rd/modules/${base%.zst}" ;;
            *) cp "$moddir/$path" "$rd/modules/$base" ;;
        esac
        echo "${base%.ko*}.ko" >> "$rd/modules/order"
    done
    cat > "$rd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules/order); do /bin/busybox insmod /modules/$m 2>/dev/null; done
root=hostroot; init=/sbin/init; flags=trans=virtio,version=9p2000.L,msize=512000,cache=loose
for arg in $(/bin/busybox cat /proc/cmdline); do
    case $arg in root=*) root=${arg#root=} ;; init=*) init=${arg#init=} ;; rootflags=*) flags=${arg#rootflags=} ;; esac
done
/bin/busybox mount -t 9p -o ro,$flags "$root" /newroot || { echo "initrd: cannot mount $root"; /bin/busybox sh; }
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev 2>/dev/null || /bin/busybox umount /dev
exec /bin/busybox switch_root /newroot "$init"
INIT
    chmod 755 "$rd/init"
    (cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initrd-$kver.img"
    rm -rf "$rd" "$debs" "$dir/busybox" "$dir/tree/boot/vmlinuz-$kver"
    {
        echo "KVER=$kver"
        echo "KERNEL=$dir/vmlinux-$kver"
        echo "INITRD=$dir/initrd-$kver.img"
        echo "MODULES=$dir/tree"
        echo "BTF=$dir/btf-$kver"
    } > "$dir/kernel.env.tmp"
    mv "$dir/kernel.env.tmp" "$dir/kernel.env"
    log "made $suite's kernel $kver in $(( $(date +%s) - start )) s ($(du -sh "$dir" | cut -f1))"
fi
cat "$dir/kernel.env"
