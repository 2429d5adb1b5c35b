#!/usr/bin/env bash
# Installs what driftless needs on a Debian host, idempotently:
# the Debian packages of the real engines (and a JDK, which builds the Java
# example's JAR and the Java e2e test's), and a Go toolchain new enough to
# build the module (from the Go module proxy when the installed one is older).
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins busybox-static iptables iproute2 procps git ca-certificates curl unzip postgresql openjdk-17-jdk-headless docker-registry chromium)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get, containerd, network namespaces)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the version go.mod asks for.
want=$(awk '/^go /{print $2; exit}' "$(dirname "$0")/../go.mod")
have=""
if command -v go >/dev/null 2>&1; then
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
fi
newest=$(printf '%s\n%s\n' "$want" "${have:-0}" | sort -V | tail -n1)
if [ -z "$have" ] || [ "$newest" != "$have" ]; then
  dest=/usr/local/go
  echo "setup: installing Go $want from the Go module proxy into $dest (found: ${have:-none})"
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go${want}.linux-amd64.zip"
  unzip -q "$tmp/go.zip" -d "$tmp"
  rm -rf "$dest"
  mv "$tmp/golang.org/toolchain@v0.0.1-go${want}.linux-amd64" "$dest"
  chmod +x "$dest"/bin/* "$dest"/pkg/tool/*/* 2>/dev/null || true
  rm -rf "$tmp"
  ln -sf "$dest/bin/go" /usr/local/bin/go
  ln -sf "$dest/bin/gofmt" /usr/local/bin/gofmt
fi
echo "setup: ok ($(go version))"
