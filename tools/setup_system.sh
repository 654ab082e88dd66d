#!/usr/bin/env bash
# Installs the Debian packages the tests use: chromium (browser tests), socat
# (virtual board on a pseudo-terminal), openssl (the TLS tests make certificates) and
# mosquitto (the MQTT broker the MQTT tests start; mosquitto-clients for mosquitto_sub).
# Pinned to the versions tested; if the mirror no longer carries a pinned version,
# the current one is installed instead and a warning says so. Without root or apt, it
# explains and changes nothing: the tests that need these packages then skip with that
# reason (on CI they fail).
set -u
PACKAGES=(
  "chromium=156.0.8078.79-1~deb12u1"
  "socat=1.7.4.4-2"
  "openssl=3.0.22-1~deb12u2"
  "mosquitto=2.0.11-1.2+deb12u2"
  "mosquitto-clients=2.0.11-1.2+deb12u2"
)
need=()
# The command each package brings, where it is not the package's name; mosquitto is in
# /usr/sbin, which a user's PATH may lack.
command_of() {
  case "$1" in
    mosquitto-clients) echo mosquitto_sub ;;
    *) echo "$1" ;;
  esac
}
for spec in "${PACKAGES[@]}"; do
  name=${spec%%=*}
  PATH="$PATH:/usr/sbin:/sbin" command -v "$(command_of "$name")" >/dev/null 2>&1 \
    || need+=("$spec")
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
