#!/bin/sh
# mmdebstrap customize hook of the kernel base image (backend_kernel_provisioner.install.image).
# $1 is the root of the new file system; the builder sets BKP_BUILD_DIR (requirements.txt) and
# BKP_CA_FILE (the host's CA bundle, used by pip for this build only and removed afterwards, so
# that a TLS-intercepting proxy of the build host never ends up trusted inside the image).
set -eu
root="$1"
in_root() { chroot "$root" /usr/bin/env -i PATH=/opt/backend/bin:/usr/local/bin:/usr/bin:/bin HOME=/root \
  LANG=C.UTF-8 PIP_CERT=/tmp/bkp-ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"; }

cp "$BKP_BUILD_DIR/requirements.txt" "$root/tmp/bkp-requirements.txt"
cp "$BKP_CA_FILE" "$root/tmp/bkp-ca.crt"

echo "customize: venv /opt/backend and the runtime dependencies"
in_root /usr/bin/python3 -m venv /opt/backend
in_root /opt/backend/bin/pip install --quiet --progress-bar off -r /tmp/bkp-requirements.txt

echo "customize: gateway_provisioners' bootstrap-kernel.sh and Python kernel launcher"
in_root /opt/backend/bin/jupyter-image-bootstrap install --languages=Python
chmod 0755 "$root/usr/local/bin/bootstrap-kernel.sh"
chmod -R a+rX "$root/usr/local/bin/kernel-launchers"

echo "customize: user kernel (1000:100), home /home/kernel"
in_root /usr/sbin/useradd --uid 1000 --gid 100 --create-home --home-dir /home/kernel --shell /bin/bash kernel

# mmdebstrap copied the build host's resolv.conf and hostname in; the container engine provides its own.
rm -rf "$root"/tmp/bkp-* "$root/root/.cache" "$root/etc/resolv.conf" "$root/etc/hostname"
