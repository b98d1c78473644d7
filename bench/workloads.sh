# workloads.sh (sourced): issue 14's CPU workloads. `workload NAME` sets import, model, size,
# batch and freeze; `workload_graph FILE IMAGES` then writes the experiment that trains it on
# the image folder IMAGES: every layer from random weights (speed does not depend on them),
# 10 classes, SGD with momentum 0.9, flips and ImageNet normalisation.
workload() {
  freeze=none
  case $1 in
    rn18_224) import=resnet18.graph model=resnet18 size=224 batch=32 ;;
    rn18_fixed_224) import=resnet18.graph model=resnet18 size=224 batch=32 freeze='all_except(["fc"])' ;;
    rn18_32) import=resnet18.graph model=resnet18 size=32 batch=128 ;;
    mnv2_224) import=mobilenet_v2.graph model=mobilenet_v2 size=224 batch=32 ;;
    vgg11_32) import=vgg.graph model=vgg11_bn size=32 batch=64 ;;
    *) echo "unknown workload $1 (rn18_224, rn18_fixed_224, rn18_32, mnv2_224, vgg11_32)" >&2; return 2 ;;
  esac
}

workload_graph() {
  local norm='normalize(mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])'
  cat > "$1" <<GRAPH
import "$import"
experiment {
  model = $model(input = [3, $size, $size])
  classes = 10
  weights = none
  freeze = $freeze
  data = image_folder("$2")
  train_transform = [hflip(0.5), $norm]
  eval_transform = [$norm]
  optimizer = sgd(lr = 0.01, momentum = 0.9)
  epochs = 2
  batch = $batch
  seed = 1
}
GRAPH
}
