#!/usr/bin/env bash
# Install, from Debian's packages, every toolchain and program the tests use,
# so that no language is skipped. Safe to run again; needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PACKAGES=(
  build-essential gcc g++ make git tmux
  golang-go rustc cargo default-jdk-headless nodejs
  lua5.4 php-cli ghc r-base-core octave gnuplot-nox guile-3.0
  chromium espeak-ng sox openssh-server fonts-dejavu-core
  man-db manpages-dev  # inspect (Shift-Tab) in the C and C++ kernels shows the C library's manual pages
  r-cran-irkernel  # the peer of backend-r in the benchmarks' peer table (benchmarks/peer_setup.py)
  dropbear-bin  # the intrinsic sshd's other server (the runner's); dropbear-bin starts no system service
  # Kernels in containers (tests/podman_host.py, backend_kernel_provisioner/install/image.py): podman with
  # runc (crun refuses this kind of host's cgroup layout), its bridge network (netavark, which needs iptables),
  # and mmdebstrap, which builds the image's rootfs from Debian packages (no image registry needed).
  podman runc catatonit netavark aardvark-dns iptables mmdebstrap
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A toolchain already on PATH (for example rustup's rustc) counts as present.
have() { command -v "$1" >/dev/null 2>&1; }
filtered=()
for pkg in "${missing[@]}"; do
  case "$pkg" in
    rustc) have rustc || filtered+=("$pkg") ;;
    cargo) have cargo || filtered+=("$pkg") ;;
    nodejs) have node || filtered+=("$pkg") ;;
    gnuplot-nox) have gnuplot || filtered+=("$pkg") ;;
    default-jdk-headless) have javac || filtered+=("$pkg") ;;
    *) filtered+=("$pkg") ;;
  esac
done
if [ ${#filtered[@]} -gt 0 ]; then
  echo "installing: ${filtered[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${filtered[@]}" >/dev/null
else
  echo "toolchains: all present"
fi
