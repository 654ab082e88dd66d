#!/usr/bin/env bash
# Installs the Debian packages the tests use: chromium (browser tests), socat
# (virtual board on a pseudo-terminal), curl (docs/PROTOCOL.md's curl transcripts), openssl (the TLS tests make certificates) and
# mosquitto (the MQTT broker the MQTT tests start; mosquitto-clients for mosquitto_sub),
# and the i686 cross compiler with its C library (the 32-bit unix port, tools/unix32.py).
# Pinned to the versions tested; if the mirror no longer carries a pinned version,
# the current one is installed instead and a warning says so. Without root or apt, it
# explains and changes nothing: the tests that need these packages then skip with that
# reason (on CI they fail).
set -u
PACKAGES=(
  "chromium=156.0.8078.79-1~deb12u1"
  "socat=1.7.4.4-2"
  "curl=7.88.1-10+deb12u14"
  "openssl=3.0.22-1~deb12u2"
  "mosquitto=2.0.11-1.2+deb12u2"
  "mosquitto-clients=2.0.11-1.2+deb12u2"
  "gcc-i686-linux-gnu=4:12.2.0-3"
  "libc6-dev-i386-cross=2.36-8cross1"
  "libc6-i386=2.36-9+deb12u14"
)
# The command each package brings, where it is not the package's name; mosquitto is in
# /usr/sbin, which a user's PATH may lack.
command_of() {
  case "$1" in
    mosquitto-clients) echo mosquitto_sub ;;
    *) echo "$1" ;;
  esac
}
# A package is there when its command is, or (a library, or a command named otherwise)
# when dpkg has it installed.
installed() {
  PATH="$PATH:/usr/sbin:/sbin" command -v "$(command_of "$1")" >/dev/null 2>&1 \
    || dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q " installed$"
}
need=()
for spec in "${PACKAGES[@]}"; do
  name=${spec%%=*}
  installed "$name" || need+=("$spec")
done
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_system: no apt-get; install ${need[*]%%=*} by hand for the browser and deploy tests"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup_system: not root; cannot install ${need[*]%%=*}; tests needing them will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || echo "setup_system: apt-get update failed"
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
  echo "setup_system: pinned versions unavailable (${need[*]}); installing current ones"
  apt-get install -y -qq --no-install-recommends "${need[@]%%=*}" >/dev/null \
    || echo "setup_system: could not install ${need[*]%%=*}"
fi
exit 0
