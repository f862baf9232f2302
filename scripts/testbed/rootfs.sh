#!/usr/bin/env bash
# Print the path of a ready Debian rootfs for throwaway test hosts, building it first
# when the cache has none for the current recipe.
#
# The rootfs boots systemd (for systemd-nspawn) and carries, because the test host has
# no network:
#   /srv/localrepo   a trusted file: apt repository with the packages in apt-packages.txt
#   /srv/wheelhouse  a pip --find-links directory with pip-requirements.txt resolved
# The cache key is a hash of this script and both lists, so editing any of them
# rebuilds; an unchanged recipe reuses the cached tree (a rebuild takes a few minutes).
#
# usage: rootfs.sh            (root; needs debootstrap, dpkg-dev and network access to
#                              the Debian and Python package mirrors the machine uses)
# env:   ANDAMIO_TESTBED_CACHE  cache folder (default /var/tmp/andamio-testbed)
#        PYTHON                 interpreter whose pip downloads the wheels (default: the
#                               first of python3 and /usr/bin/python3 that has pip)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${ANDAMIO_TESTBED_CACHE:-/var/tmp/andamio-testbed}
suite=bookworm
target_python=3.11 # Python of Debian bookworm; the wheelhouse is resolved for it

key=$(cat "$here/rootfs.sh" "$here/apt-packages.txt" "$here/pip-requirements.txt" | sha256sum | cut -c1-16)
out=$cache/rootfs-$key

log() { echo "rootfs.sh: $*" >&2; }
packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1"; }

if [[ -f $out/.andamio-complete ]]; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock -w 1800 9 || { log "timed out waiting for another build"; exit 1; }
if [[ -f $out/.andamio-complete ]]; then # built by whoever held the lock
    echo "$out"
    exit 0
fi

for tool in debootstrap dpkg-scanpackages; do
    command -v "$tool" >/dev/null || { log "$tool is missing (see scripts/bootstrap.sh)"; exit 1; }
done

# The mirror is the one this machine's apt already uses: no host name is written down.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then
    mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || { log "cannot find the Debian mirror in /etc/apt"; exit 1; }

tmp=$out.partial
rm -rf "$tmp"
started=$SECONDS
log "building $out from $mirror (a few minutes, once per recipe)"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,iproute2 \
    "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $cache/debootstrap.log"; exit 1; }

# Stage the .deb files the playbooks install, with their dependencies that the base
# tree lacks, as a flat repository the host's apt trusts.
mapfile -t debs < <(packages "$here/apt-packages.txt")
rm -f "$tmp"/var/cache/apt/archives/*.deb
chroot "$tmp" apt-get install -y -q --download-only --no-install-recommends "${debs[@]}" >"$cache/apt-download.log" 2>&1 \
    || { log "downloading packages failed, see $cache/apt-download.log"; exit 1; }
mkdir -p "$tmp/srv/localrepo"
mv "$tmp"/var/cache/apt/archives/*.deb "$tmp/srv/localrepo/"
(cd "$tmp/srv/localrepo" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null | gzip -9 >Packages.gz)
echo 'deb [trusted=yes] file:/srv/localrepo ./' >"$tmp/etc/apt/sources.list"
rm -rf "$tmp"/var/lib/apt/lists/*
chroot "$tmp" apt-get update -q >>"$cache/apt-download.log" 2>&1

# Resolve the Python requirements for the target interpreter as wheels only. Any
# interpreter with pip will do (a uv-made venv has none): the target is given explicitly.
python=
for candidate in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$candidate" -m pip --version >/dev/null 2>&1; then python=$candidate; break; fi
done
[[ -n $python ]] || { log "no python with pip found to download wheels (set PYTHON)"; exit 1; }
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)
"$python" -m pip download -q --disable-pip-version-check --only-binary=:all: \
    --python-version "$target_python" --implementation cp "${platforms[@]}" \
    -d "$tmp/srv/wheelhouse" -r "$here/pip-requirements.txt" >"$cache/pip-download.log" 2>&1 \
    || { log "pip download failed, see $cache/pip-download.log"; exit 1; }

# Timers that could take the dpkg lock in the middle of a converge are masked.
for unit in apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# Each boot gets its own machine id from systemd-nspawn.
: >"$tmp/etc/machine-id"

touch "$tmp/.andamio-complete"
rm -rf "$out"
mv "$tmp" "$out"
# Trees built from an older recipe are dead weight, unless a running host still uses one.
for old in "$cache"/rootfs-*; do
    [[ -d $old && $old != "$out" ]] || continue
    grep -q "lowerdir=${old}[,:]" /proc/mounts || rm -rf "$old"
done
log "ready in $((SECONDS - started)) s: $out ($(du -sh "$out" | cut -f1))"
echo "$out"
