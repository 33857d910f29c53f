#!/usr/bin/env bash
# Put a dataset where the configs read it, offline where possible.
# Usage: bash scripts/get_data.sh fashion-mnist [DEST]  (DEST: data/fashion-mnist)
#
# Fashion-MNIST comes from Debian's dataset-fashion-mnist package when it is
# installed (`apt-get install dataset-fashion-mnist`), else from the
# official release over HTTPS. The four IDX files are extracted (MMPretrain
# reads the extracted files) and their contents checked by SHA-256 against
# the release's (the extracted files of the archives whose MD5s the release
# publishes; the package's .gz files differ byte-wise from the release's,
# their contents do not). A file that differs is deleted.
# FASHION_MNIST_PACKAGE: another folder of the four .gz files.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
if [ "$name" != fashion-mnist ]; then
  echo "usage: bash scripts/get_data.sh fashion-mnist [DEST]" >&2
  exit 2
fi
dest=${2:-data/fashion-mnist}
package=${FASHION_MNIST_PACKAGE:-/usr/share/datasets/fashion-mnist}
release=https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

mkdir -p "$dest"
for file in $files; do
  if [ -f "$package/$file.gz" ]; then
    source="$package/$file.gz"
  else
    source="$dest/$file.gz"
    [ -f "$source" ] || curl -fsSL -o "$source" "$release/$file.gz" || {
      echo "error: cannot get $file.gz: install Debian's package" \
        "(apt-get install dataset-fashion-mnist) or download it from" \
        "$release into $dest" >&2
      exit 1
    }
  fi
  gzip -dc "$source" > "$dest/$file.tmp" && mv "$dest/$file.tmp" "$dest/$file"
done

python3 - "$dest" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
# SHA-256 of the extracted release files (the same in independent
# published copies made from the archives with the release's MD5s).
expected = {
    'train-images-idx3-ubyte':
    'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    'train-labels-idx1-ubyte':
    'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    't10k-images-idx3-ubyte':
    '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    't10k-labels-idx1-ubyte':
    '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
}
for name, digest in expected.items():
    path = os.path.join(root, name)
    with open(path, 'rb') as f:
        found = hashlib.sha256(f.read()).hexdigest()
    if found != digest:
        os.remove(path)
        sys.exit(f'error: {path} is not the Fashion-MNIST release\'s '
                 f'(SHA-256 {found}, expected {digest}); deleted it. Delete '
                 f'its .gz beside it, if any, and run this script again.')
for split, n in (('train', 60000), ('t10k', 10000)):
    print(f'{root}: {split} {n} images, {n // 10} per class: ok '
          '(SHA-256 of the release)')
PY
