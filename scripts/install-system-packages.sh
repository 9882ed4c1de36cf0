#!/bin/sh
# Debian packages the tests use: poppler's pdfsig/pdftotext and NSS's certutil
# (to trust the signing CA in pdfsig's NSS database), Debian's chromium for the
# browser tests (Playwright drives it; no browser is downloaded), SoftHSM2 for the
# tests of a signing CA whose key is in a PKCS#11 token.
set -eu
missing=""
command -v pdfsig >/dev/null 2>&1 || missing="$missing poppler-utils"
command -v certutil >/dev/null 2>&1 || missing="$missing libnss3-tools"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v softhsm2-util >/dev/null 2>&1 || missing="$missing softhsm2"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "justering: please install:$missing (tests that need them will fail)" >&2
    exit 0
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
