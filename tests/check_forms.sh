#!/usr/bin/env bash
# check_forms.sh TLC CASE
# A case writes one experiment setting in two forms the docs show (named and positional
# arguments, a --set of an argument the file gives by position, the recipe as --emit=ir
# prints it) and checks that tlc makes the same of both: the same resolved recipe (--emit=ir)
# and the same output of the stages that consume the setting. A third, different value must
# change those stages' output, so the case shows that they read the setting at all.
set -u
tlc=$1 case=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common='model = cnn_bn(input = [1, 28, 28])'   # the line the forms share
A_SET=()
same_call=true    # the model's call is written alike in every form (--emit=ir prints it as written)

case $case in
lr_mult)
  stage=kir
  A='lr_mult = [mult("classifier.3", 10)]'
  B='lr_mult = [mult(factor = 10, layer = "classifier.3")]'
  C='lr_mult = [mult("classifier.3", 2)]' ;;
sgd)
  stage=kir
  A='optimizer = sgd(0.1, 0.9, true, 0.001)'
  B='optimizer = sgd(weight_decay = 0.001, nesterov = true, momentum = 0.9, lr = 0.1)'
  C='optimizer = sgd(0.1, 0.9)' ;;
adam)
  stage=kir
  A='optimizer = adamw(0.002, [0.8, 0.99], 1e-7, 0.05)'
  B='optimizer = adamw(eps = 1e-7, weight_decay = 0.05, betas = [0.8, 0.99], lr = 0.002)'
  C='optimizer = adamw(0.002)' ;;
set_positional)   # --set NAME.ARG replaces an argument given by position
  stage=kir
  A='optimizer = sgd(0.1, 0.9)'
  A_SET=(--set optimizer.lr=0.5)
  B='optimizer = sgd(lr = 0.5, momentum = 0.9)'
  C='optimizer = sgd(0.1, 0.9)' ;;
step)
  stage=c
  A='schedule = step(3, 0.5, 2)'
  B='schedule = step(warmup = 2, gamma = 0.5, step_size = 3)'
  C='schedule = step(3, 0.5)' ;;
cosine)
  stage=c
  A='schedule = cosine(0.001, 1)'
  B='schedule = cosine(warmup = 1, eta_min = 0.001)'
  C='schedule = cosine()' ;;
multistep)
  stage=c
  A='schedule = multistep([2, 4], 0.5, 1)'
  B='schedule = multistep(gamma = 0.5, warmup = 1, milestones = [2, 4])'
  C='schedule = multistep([2, 4])' ;;
constant)
  stage=c
  A='schedule = constant(2)'
  B='schedule = constant(warmup = 2)'
  C='schedule = constant()' ;;
data)
  stage=c
  A='data = cifar10("some/dir", 500)'
  B='data = cifar10(dev = 500, dir = "some/dir")'
  C='data = cifar10("some/dir")' ;;
idx_names)        # quotes and backslashes in names, as the C source must escape them
  stage=c
  A='data = idx("some/dir", 100, ["T-shirt/top", "Trouser", "a \"b\"", "c\\d", "4", "5", "6", "7", "8", "9"])'
  B='data = idx(names = ["T-shirt/top", "Trouser", "a \"b\"", "c\\d", "4", "5", "6", "7", "8", "9"], val = 100,
                dir = "some/dir")'
  C='data = idx("some/dir", 100, ["T-shirt/top", "Trouser", "a b", "c d", "4", "5", "6", "7", "8", "9"])' ;;
subset)
  stage=c
  A='subset = subset([1, 2], 5)'
  B='subset = subset(per_class = 5, classes = [1, 2])'
  C='subset = subset([1, 2])' ;;
transforms)
  stage=c
  A='train_transform = [random_resized_crop(28, [0.5, 1], [0.8, 1.2]), hflip(0.3), vflip(0.2), rotate(10),
                        color_jitter(0.1, 0.2, 0.3, 0.05), random_crop(28, 2), normalize([0.5], [0.25])]'
  B='train_transform = [random_resized_crop(ratio = [0.8, 1.2], scale = [0.5, 1], size = 28), hflip(p = 0.3),
                        vflip(p = 0.2), rotate(degrees = 10),
                        color_jitter(hue = 0.05, saturation = 0.3, contrast = 0.2, brightness = 0.1),
                        random_crop(pad = 2, size = 28), normalize(std = [0.25], mean = [0.5])]'
  C='train_transform = [random_resized_crop(28, [0.5, 1], [0.8, 1.2]), hflip(0.3), vflip(0.2), rotate(10),
                        color_jitter(0.1, 0.2, 0.3, 0.05), random_crop(28, 3), normalize([0.5], [0.25])]' ;;
freeze_before)
  stage=train-ir
  A='freeze = before("classifier")'
  B='freeze = before(layer = "classifier")'
  C='freeze = through("classifier.0")' ;;
freeze_except)
  stage=train-ir
  A='freeze = all_except(["classifier"])'
  B='freeze = all_except(layers = ["classifier"])'
  C='freeze = all_except(["classifier.3"])' ;;
round_trip)       # what --emit=ir prints, written back as the experiment (A is B's printout)
  stage='c kir'
  common='model = cnn_bn(input = [3, 32, 32], hidden = 16)'
  B='batch = 8
  seed = 7
  weights = "/weights/w.safetensors"
  freeze = before(layer = "classifier.3")
  frozen_bn = "batch"
  data = image_folder(val_split = 0.2)
  subset = subset([3, 1], per_class = 20)
  train_transform = [grayscale_to_rgb(), random_resized_crop(32, [0.3, 1]), hflip(), rotate(7.5),
                     color_jitter(0.4, 0.4, 0.4, 0.1), normalize()]
  eval_transform = [resize(36), center_crop(32), normalize([0.5], [0.25])]
  optimizer = adam(3e-4, weight_decay = 1e-4)
  schedule = step(5)
  lr_mult = [mult(factor = 10, layer = "classifier.3")]
  decay_bn_bias = false
  label_smoothing = 0.1
  precision = "fp32"'
  C=${B/batch = 8/batch = 4}
  A_common='# the whole recipe, model included, from --emit=ir'
  same_call=false ;;
model_classes)    # the model's call gives classes by position, and the setting agrees
  stage=train-ir
  common='classes = 5'
  A='model = cnn_bn(5, input = [1, 28, 28])'
  B='model = cnn_bn(classes = 5, input = [1, 28, 28])'
  C='model = cnn_bn(input = [1, 28, 28])'
  C_common='classes = 6'
  same_call=false ;;
*) echo "unknown case '$case'"; exit 2 ;;
esac

emit() {   # FORM STAGE [ARGS...]
  local form=$1 stage=$2
  shift 2
  (cd "$tmp/$form" && "$tlc" exp.graph --emit="$stage" "$@" > "../$form.$stage") ||
    { echo "FAIL: $case: form $form does not compile"; cat "$tmp/$form/exp.graph"; exit 1; }
  $same_call || sed -i '/^# model = /d' "$tmp/$form.$stage"
}
# Each form in a folder of its own under one name: the trainer's C source names its file.
for x in B A C; do
  mkdir "$tmp/$x"
  m=${x}_common
  printf 'import "cnn_bn.graph"\nexperiment {\n  %s\n  %s\n}\n' "${!m:-$common}" "${!x}" > "$tmp/$x/exp.graph"
  if [ "$case" = round_trip ] && [ $x = B ]; then
    A=$(cd "$tmp/B" && "$tlc" exp.graph --emit=ir | sed -n 's/^# \([a-z_]* = .*\)/\1/p')
  fi
done
emit A ir "${A_SET[@]}"
emit B ir
diff -u "$tmp/A.ir" "$tmp/B.ir" || { echo "FAIL: $case: the two forms resolve to different recipes"; exit 1; }
for s in $stage; do
  emit A "$s" "${A_SET[@]}"
  emit B "$s"
  emit C "$s"
  diff -u "$tmp/A.$s" "$tmp/B.$s" > /dev/null || { echo "FAIL: $case: the two forms give different --emit=$s"; exit 1; }
  cmp -s "$tmp/A.$s" "$tmp/C.$s" && { echo "FAIL: $case: --emit=$s does not change with the setting"; exit 1; }
done
echo "ok: $case"
