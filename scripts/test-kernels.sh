#!/usr/bin/env bash
# make test-kernels: the kernel-sensitive part of the integration suite inside
# Debian's own kernels, each booted under qemu (software emulation: nested KVM
# stalls on the machines this runs on).
#
#   KERNELS="6.1 6.12"   which kernels (Debian series); default both
#   KERNEL_LIST=FILE     the tests to run (default scripts/kernel-tests.txt; make test
#                        uses scripts/kernel-tests-ci.txt)
#   KERNEL_TESTS="..."   pytest arguments instead of a list
#   KERNEL_MEM=3G        guest memory
#   KERNEL_TIMEOUT=2400  seconds before a guest is killed
#
# Each kernel's newest Debian package (linux-image-<series>...-amd64) is
# fetched with `apt-get download`, unpacked and depmod'ed once under
# .build-kernels/ (git ignores it). The guest boots a small busybox
# initramfs that mounts this machine's root read-only over 9p with a tmpfs
# overlay on top, the kernel's modules at /lib/modules and a read-write
# results folder, then runs scripts/kernel-guest.sh there: pytest on the
# chosen tests with the same conftest, ctl and conntrack as on the host.
# Exit status: 0 when every kernel's run passed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=$REPO/.build-kernels
KERNELS=${KERNELS:-"6.1 6.12"}
MEM=${KERNEL_MEM:-3G}
TIMEOUT=${KERNEL_TIMEOUT:-2400}
CTL_BIN=${CTL:-$REPO/.build/release/ctl}
# The real interpreter (not a pyenv shim: every process start is slow in the guest).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
mkdir -p "$CACHE"

for tool in qemu-system-x86_64 busybox cpio depmod modprobe apt-get dpkg-deb xz; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null || { echo "test-kernels: $tool missing (make deps installs it)" >&2; exit 1; }
done
[ -x "$CTL_BIN" ] || { echo "test-kernels: no ctl binary at $CTL_BIN (make build)" >&2; exit 1; }

# Debian's newest plain amd64 image package of a series ("6.1" -> linux-image-6.1.0-57-amd64).
package_for() {
    local series=$1 re
    re="^linux-image-${series//./\\.}[.-][0-9][^ ]*-amd64\$"
    apt-cache search --names-only "$re" 2>/dev/null | awk '{print $1}' \
        | grep -v -e '-cloud-' -e '-rt-' | sort -V | tail -n 1
}

# Unpacks the package once; prints the directory (lib/modules/VERSION and boot/vmlinuz-VERSION inside).
fetch_kernel() {
    local pkg=$1 dir=$CACHE/$1
    if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir" && mkdir -p "$dir/deb"
        echo "test-kernels: fetching $pkg" >&2
        (cd "$dir/deb" && apt-get -o APT::Sandbox::User=root download "$pkg" >&2)
        dpkg-deb -x "$dir"/deb/*.deb "$dir/root"
        rm -rf "$dir/deb"
        local ver
        ver=$(ls "$dir/root/lib/modules")
        depmod -b "$dir/root" "$ver"
        touch "$dir/.done"
    fi
    echo "$dir"
}

# The initramfs: busybox, the modules to reach the 9p shares and the overlay, /init.
build_initramfs() {
    local dir=$1 ver=$2 out=$1/initramfs.cpio.gz
    [ -f "$out" ] && [ "$out" -nt "$REPO/scripts/test-kernels.sh" ] && return 0
    local tmp=$dir/initramfs
    rm -rf "$tmp" && mkdir -p "$tmp"/{bin,proc,sys,dev,lower,rw,newroot,mods}
    cp /bin/busybox "$tmp/bin/busybox"
    local n=0 line path seen=
    # modprobe prints the insmod lines in load order (netfs before 9pnet on 6.12).
    while read -r line; do
        case $line in insmod\ *) ;; *) continue ;; esac
        path=${line#insmod }; path=${path%% *}
        case " $seen " in *" $path "*) continue ;; esac
        seen="$seen $path"
        n=$((n + 1))
        case $path in
            *.xz) xz -dc "$path" > "$tmp/mods/$(printf %02d $n).ko" ;;
            *.zst) zstd -qdc "$path" > "$tmp/mods/$(printf %02d $n).ko" ;;
            *) cp "$path" "$tmp/mods/$(printf %02d $n).ko" ;;
        esac
    done < <(modprobe -d "$dir/root" -S "$ver" --show-depends -a virtio_pci 9pnet_virtio 9p overlay)
    cat > "$tmp/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod "$m" || echo "initramfs: insmod $m failed"; done
o9p="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$o9p,ro,cache=loose" hostroot /lower || { echo "initramfs: no root share"; poweroff -f; }
mount -t tmpfs -o size=2g tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
mkdir -p /newroot/usr/lib/modules/"$(uname -r)" /newroot/ctl-results
mount -t 9p -o "$o9p,ro" modules /newroot/usr/lib/modules/"$(uname -r)"
mount -t 9p -o "$o9p,rw" results /newroot/ctl-results
guest=$(cat /newroot/ctl-results/guest-script)
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$guest"
EOF
    chmod +x "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
    rm -rf "$tmp"
}

run_kernel() {
    local series=$1 pkg dir ver results start rc
    pkg=$(package_for "$series")
    if [ -z "$pkg" ]; then
        echo "test-kernels: no Debian package for kernel $series (apt-get update?)" >&2
        return 1
    fi
    dir=$(fetch_kernel "$pkg")
    ver=$(ls "$dir/root/lib/modules")
    build_initramfs "$dir" "$ver"
    results=$CACHE/results/$series
    rm -rf "$results" && mkdir -p "$results"
    echo "$REPO/scripts/kernel-guest.sh" > "$results/guest-script"
    {
        printf 'REPO=%q\nCTL=%q\nPYTHON=%q\n' "$REPO" "$CTL_BIN" "$PYTHON"
        printf 'KERNEL_TESTS=%q\nKERNEL_LIST=%q\n' "${KERNEL_TESTS:-}" "${KERNEL_LIST:-}"
    } > "$results/guest-env"
    echo "=== kernel $series ($pkg): booting under qemu (TCG)"
    start=$(date +%s)
    rc=0
    timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
        -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
        -kernel "$dir/root/boot/vmlinuz-$ver" -initrd "$dir/initramfs.cpio.gz" \
        -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init" \
        -nographic -no-reboot -nic none \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$dir/root/lib/modules/$ver,mount_tag=modules,security_model=none,readonly=on" \
        -virtfs "local,path=$results,mount_tag=results,security_model=none" \
        </dev/null || rc=$?
    local took=$(( $(date +%s) - start ))
    local summary="no result (guest did not finish; qemu exit $rc)"
    local prc=
    [ -f "$results/rc" ] && prc=$(cat "$results/rc")
    [ -f "$results/summary" ] && summary=$(cat "$results/summary")
    printf '=== kernel %s (%s): %s in %dm%02ds\n' "$series" "$ver" "$summary" $((took / 60)) $((took % 60)) \
        | tee -a "$CACHE/results/report"
    [ "$prc" = 0 ]
}

mkdir -p "$CACHE/results"
: > "$CACHE/results/report"
failed=()
for k in $KERNELS; do
    run_kernel "$k" || failed+=("$k")
done
echo "=== test-kernels summary"
cat "$CACHE/results/report"
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-kernels: failed on ${failed[*]}" >&2
    exit 1
fi
