#!/usr/bin/env bash
# recipes.sh TLC SCRATCH: every example states the recipe it reproduces, and is it.
# 1. Each example's settings, as `tlc FILE --emit=ir` prints them, hold the recipe of
#    tests/e2e/recipes.txt (written from the write-ups' table); mobilenet_v2_partial trains
#    1,016,742 parameters (Keras's block_15_add and everything before it frozen).
# 2. Each example builds and trains one epoch at 32x32, batch 8, on data this test writes in the
#    example's own layout and path (Flowers102, hot dog, hymenoptera, CIFAR-10), the pretrained
#    ones from torchvision models with seeded random weights saved as safetensors: the run ends
#    with a result line and no nan, and the examples that test every epoch print the test figure
#    on the epoch line.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
imagenet='normalize(mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])'
train224="[random_resized_crop(224, scale = [0.08, 1], ratio = [0.75, 1.33333333]), hflip(p = 0.5), $imagenet]"
eval224="[resize(256), center_crop(224), $imagenet]"

# 1. The recipes read back.
for f in "$root"/examples/*.graph; do
  "$tlc" "$f" --emit=ir > "$(basename "$f" .graph).ir" || echo "FAIL: $f does not compile"
done
while IFS='|' read -r example setting value; do
  case $example in '#'* | '') continue ;; esac
  example=$(echo $example) setting=$(echo $setting) value=$(echo "$value" | sed 's/^ *//; s/ *$//')
  value=${value/TRAIN224/$train224} value=${value/EVAL224/$eval224}
  check "$example: $setting = $value" grep -qxF "# $setting = $value" "$example.ir"
done < "$root/tests/e2e/recipes.txt"
for f in "$root"/examples/*.graph; do   # the first comment names the recipe
  check "$(basename "$f"): its first line says the recipe" sh -c "head -1 '$f' | grep -qE '^# (Recipe|Fashion-MNIST)'"
done
check "mobilenet_v2_partial: 1,016,742 parameters train" sh -c \
  "'$tlc' '$root/examples/mobilenet_v2_partial.graph' --stats | grep -qF '(trainable 1,016,742, frozen 1,337,792)'"

# 2. One epoch each, small.
mkdir -p data weights
$py "$root/tests/data/make_data.py" flowers102 data/flowers102 36 &&
  $py "$root/tests/data/make_data.py" hotdog data/hotdog 8 &&
  $py "$root/tests/data/make_data.py" hymenoptera data/hymenoptera_data 8 &&
  $py "$root/tests/data/make_data.py" cifar10 data/cifar-10-batches-bin 8 &&
  for m in resnet18 mobilenet_v2 efficientnet_b5; do
    $py "$root/tests/weights/weights.py" make $m 1000 weights/$m.safetensors 3 || exit 1
  done || exit 1
for f in "$root"/examples/*.graph; do
  name=$(basename "$f" .graph)
  [ "$name" = fashion_cnn ] && continue   # e2e.fashion trains it on the real data
  sets=(--set epochs=1 --set batch=8)
  case $name in
    cifar10_rn18) ;;                                                    # 32x32 already
    mobilenet_v2_*) sets+=(--set 'model=mobilenet_v2(input = [3, 32, 32], dropout = 0)'
                          --set "train_transform=[resize([32, 32]), $imagenet]"
                          --set "eval_transform=[resize([32, 32]), $imagenet]") ;;
    *) sets+=(--set image=32) ;;
  esac
  # A pretrained example's weights file is named relative to the example: here, the one written above.
  weights=$(sed -n 's|^# weights = "weights/\(.*\)"$|--weights weights/\1|p' "$name.ir")
  start=$(date +%s)
  check "$name: builds" "$tlc" "$f" "${sets[@]}" -o "train_$name"
  built=$(date +%s)
  check "$name: trains one epoch" sh -c "./train_$name $weights --out run_$name --threads 2 > $name.txt 2>&1"
  echo "$name: built in $((built - start)) s, trained in $(($(date +%s) - built)) s"
  check "$name: a result, no nan" sh -c "grep -q '^epoch 1/1 ' $name.txt && grep -q '^result: test_acc=0\.' $name.txt && ! grep -qi nan $name.txt"
done
for name in hotdog_rn18 hotdog_rn18_scratch; do
  check "$name: tested every epoch" grep -qE '^epoch 1/1 .*test_acc [0-9.]+%' $name.txt
done
check "cifar10_rn18: dev is data_batch_5" grep -qF "data: data/cifar-10-batches-bin (cifar10): train 32, val 8, test 8 images" cifar10_rn18.txt
check "flowers102: the setid splits" grep -qF "train 12, val 12, test 12 images, 102 classes" resnet18_ft.txt
check_report e2e.recipes
