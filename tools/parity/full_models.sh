#!/usr/bin/env bash
# Full-size parity, on demand (needs the Python venv of tools/parity/README.md; ~1 GB of
# files under target/full_models, not committed):
#   torchvision deeplabv3_resnet50, smp Unet(resnet34), timm swin_tiny, torchvision
#   maskrcnn_resnet50_fpn — random weights, state dicts saved with torch.save, then loaded by
#   zoo-models and compared on flex.
#   ONLY=mask_rcnn tools/parity/full_models.sh   # just Mask R-CNN (torch + torchvision only)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
OUT=${ZOO_FULL_MODELS_DIR:-$PWD/target/full_models}
FILTER=full_size
if [ "${ONLY:-}" = mask_rcnn ]; then
  FILTER=full_size_mask_rcnn
else
  (cd tools/parity && "$PYTHON" full_models.py "$OUT")
fi
(cd tools/parity && "$PYTHON" full_mask_rcnn.py "$OUT")
ZOO_FULL_MODELS_DIR="$OUT" ZOO_TEST_DEVICES=flex \
  cargo test --workspace --test models "$FILTER" -- --ignored --nocapture
